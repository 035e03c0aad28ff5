//! A minimal in-process XMPP server for `jitape demo` and the loopback tests: it accepts
//! XEP-0114 components on 127.0.0.1, routes stanzas between them, and hosts MUC services
//! that behave like Prosody's for what Jitsi uses.
//!
//! In: a [`SimServerConfig`]; components connecting over TCP. Out: a [`SimServer`] handle
//! (address, link-drop and restart switches, room snapshots for assertions).
//!
//! One server task owns all state (routing table, rooms, connections); each connection task
//! talks to it by channels. The pure parts are `router_route.rs` (routing) and `muc*.rs`
//! (rooms); `router_conn.rs` speaks the component protocol.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use minidom::Element;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinHandle, JoinSet};

pub use crate::muc::{Affiliation, OccupantSnapshot, Role, RoomSnapshot};

mod conn;
mod route;
#[cfg(test)]
mod tests;
mod wire;
pub(crate) mod xml;

use conn::{ConnConfig, ConnEvent};
use route::{ConnId, Routes};

/// What the simulated server serves.
#[derive(Debug, Clone)]
pub struct SimServerConfig {
    /// External components allowed to connect: `(domain, secret)`.
    pub components: Vec<(String, String)>,
    /// MUC services, e.g. `conference.localhost`.
    pub muc_domains: Vec<String>,
    /// JIDs (compared by bare JID) that own every room, like Prosody's `admins` with
    /// `component_admins_as_room_owners` (docker-jitsi-meet puts the focus there).
    pub admins: Vec<String>,
    /// VirtualHost-like domains that answer XEP-0199 ping and disco#info sent to them.
    pub server_domains: Vec<String>,
    /// Stanza size limit; Prosody's `component_stanza_size_limit` default is 512 KiB.
    pub max_stanza_bytes: usize,
    /// How long [`SimServer::restart`] keeps the port closed.
    pub restart_pause: Duration,
}

impl Default for SimServerConfig {
    fn default() -> Self {
        SimServerConfig {
            components: Vec::new(),
            muc_domains: Vec::new(),
            admins: Vec::new(),
            server_domains: Vec::new(),
            max_stanza_bytes: 512 * 1024,
            restart_pause: Duration::from_millis(100),
        }
    }
}

/// What the server looks like right now (published after every change).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerSnapshot {
    /// Components currently attached, sorted.
    pub components: Vec<String>,
    /// Live rooms of every MUC service, sorted by room JID.
    pub rooms: Vec<RoomSnapshot>,
}

/// Handle to a running simulated server. Dropping it stops the server.
pub struct SimServer {
    addr: SocketAddr,
    commands: mpsc::UnboundedSender<Command>,
    state: watch::Receiver<Arc<ServerSnapshot>>,
    task: Option<JoinHandle<()>>,
}

enum Command {
    DropComponent(String),
    Restart(oneshot::Sender<io::Result<()>>),
    Shutdown,
}

impl SimServer {
    /// Binds 127.0.0.1 on an ephemeral port and starts serving.
    pub async fn start(config: SimServerConfig) -> io::Result<SimServer> {
        let listener = bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let addr = listener.local_addr()?;
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (state_tx, state) = watch::channel(Arc::new(ServerSnapshot::default()));
        let server = Server::new(&config, addr, listener, state_tx);
        let task = tokio::spawn(server.run(commands_rx));
        tracing::info!(%addr, "sim router: listening for components");
        Ok(SimServer {
            addr,
            commands,
            state,
            task: Some(task),
        })
    }

    /// Where components connect (`DnsConfig::addr(&addr.to_string())`).
    pub fn component_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts that component's TCP connection (no stream error, no footer): an XMPP link drop.
    /// Its occupants leave their rooms at once.
    pub fn drop_component(&self, domain: &str) {
        let _ = self
            .commands
            .send(Command::DropComponent(domain.to_owned()));
    }

    /// Like a Prosody restart: every connection cut, every room gone, the port closed for
    /// `restart_pause`, then listening again on the same port. Returns once listening.
    pub async fn restart(&self) -> io::Result<()> {
        let (reply, done) = oneshot::channel();
        self.commands
            .send(Command::Restart(reply))
            .map_err(|_| stopped())?;
        done.await.map_err(|_| stopped())?
    }

    /// The live rooms (sorted by room JID, occupants in join order).
    pub fn rooms(&self) -> Vec<RoomSnapshot> {
        self.state.borrow().rooms.clone()
    }

    /// The attached component domains, sorted.
    pub fn connected_components(&self) -> Vec<String> {
        self.state.borrow().components.clone()
    }

    /// Waits until `condition` holds on the published state and returns that state. Bound
    /// it with a timeout in tests.
    pub async fn wait_for(
        &self,
        mut condition: impl FnMut(&ServerSnapshot) -> bool,
    ) -> io::Result<Arc<ServerSnapshot>> {
        let mut state = self.state.clone();
        let snapshot = state
            .wait_for(|s| condition(s))
            .await
            .map_err(|_| stopped())?;
        Ok(Arc::clone(&snapshot))
    }

    /// Stops the server and waits for its task to end.
    pub async fn shutdown(mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "sim server stopped")
}

/// A listening socket with `SO_REUSEADDR`, so a restart can rebind while old connections
/// sit in TIME_WAIT.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}

struct ConnEntry {
    outbound: mpsc::UnboundedSender<Element>,
    abort: AbortHandle,
}

/// The server task's state: the one owner of everything.
struct Server {
    addr: SocketAddr,
    listener: Option<TcpListener>,
    conn_config: Arc<ConnConfig>,
    restart_pause: Duration,
    routes: Routes,
    conns: HashMap<ConnId, ConnEntry>,
    next_conn: ConnId,
    tasks: JoinSet<()>,
    events_tx: mpsc::Sender<ConnEvent>,
    events: mpsc::Receiver<ConnEvent>,
    state: watch::Sender<Arc<ServerSnapshot>>,
}

impl Server {
    fn new(
        config: &SimServerConfig,
        addr: SocketAddr,
        listener: TcpListener,
        state: watch::Sender<Arc<ServerSnapshot>>,
    ) -> Server {
        let secrets = config.components.iter().cloned().collect();
        let conn_config = ConnConfig {
            secrets,
            max_stanza_bytes: config.max_stanza_bytes,
        };
        let routes = Routes::new(
            config.components.iter().map(|(d, _)| d.clone()),
            &config.muc_domains,
            &config.server_domains,
            &config.admins,
            rand::random(),
        );
        let (events_tx, events) = mpsc::channel(1024);
        Server {
            addr,
            listener: Some(listener),
            conn_config: Arc::new(conn_config),
            restart_pause: config.restart_pause,
            routes,
            conns: HashMap::new(),
            next_conn: 1,
            tasks: JoinSet::new(),
            events_tx,
            events,
            state,
        }
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            tokio::select! {
                accepted = accept(self.listener.as_ref()) => match accepted {
                    Ok((socket, peer)) => self.spawn_conn(socket, peer),
                    Err(e) => tracing::warn!(error = %e, "sim router: accept failed"),
                },
                Some(event) = self.events.recv() => self.on_event(event),
                command = commands.recv() => match command {
                    Some(Command::DropComponent(domain)) => self.drop_component(&domain),
                    Some(Command::Restart(reply)) => {
                        let result = self.restart().await;
                        let _ = reply.send(result);
                    }
                    Some(Command::Shutdown) | None => break,
                },
                Some(_) = self.tasks.join_next() => {}
            }
        }
        self.tasks.shutdown().await;
        tracing::info!("sim router: stopped");
    }

    fn spawn_conn(&mut self, socket: TcpStream, peer: SocketAddr) {
        let conn = self.next_conn;
        self.next_conn += 1;
        tracing::debug!(conn, %peer, "sim router: connection accepted");
        let (outbound, outbound_rx) = mpsc::unbounded_channel();
        let task = conn::run(
            conn,
            socket,
            Arc::clone(&self.conn_config),
            self.events_tx.clone(),
            outbound_rx,
        );
        let abort = self.tasks.spawn(task);
        self.conns.insert(conn, ConnEntry { outbound, abort });
    }

    fn on_event(&mut self, event: ConnEvent) {
        let mut out = Vec::new();
        match event {
            ConnEvent::Authenticated {
                conn,
                domain,
                verdict,
            } => {
                let accepted =
                    self.conns.contains_key(&conn) && self.routes.attach(&domain, conn).is_ok();
                if !accepted {
                    tracing::warn!(conn, component = %domain, "sim router: second connection refused");
                }
                let _ = verdict.send(accepted);
            }
            ConnEvent::Stanza { conn, stanza } => {
                let live = self.conns.contains_key(&conn);
                if let Some(domain) = self.routes.domain_of(conn).filter(|_| live) {
                    self.routes
                        .handle_component_stanza(&domain, stanza, &mut out);
                }
            }
            ConnEvent::Closed { conn } => {
                self.conns.remove(&conn);
                if let Some(domain) = self.routes.detach(conn, &mut out) {
                    tracing::info!(conn, component = %domain, "sim router: component disconnected");
                }
            }
        }
        self.publish();
        self.deliver(out);
    }

    fn drop_component(&mut self, domain: &str) {
        let Some(conn) = self.routes.conn_of(domain) else {
            return;
        };
        if let Some(entry) = self.conns.remove(&conn) {
            entry.abort.abort();
        }
        let mut out = Vec::new();
        self.routes.detach(conn, &mut out);
        tracing::info!(component = %domain, "sim router: component link cut");
        self.publish();
        self.deliver(out);
    }

    async fn restart(&mut self) -> io::Result<()> {
        tracing::info!("sim router: restarting");
        for (_, entry) in self.conns.drain() {
            entry.abort.abort();
        }
        self.routes.reset();
        self.publish();
        self.listener = None;
        tokio::time::sleep(self.restart_pause).await;
        let mut attempt = 0;
        let listener = loop {
            match bind(self.addr) {
                Ok(listener) => break listener,
                Err(e) if attempt < 50 => {
                    attempt += 1;
                    tracing::debug!(error = %e, "sim router: rebind failed, retrying");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
        };
        self.listener = Some(listener);
        tracing::info!(addr = %self.addr, "sim router: listening again");
        Ok(())
    }

    /// Publishes the state before anything is delivered, so a test that reacts to a
    /// delivered stanza sees the state that produced it.
    fn publish(&self) {
        let snapshot = ServerSnapshot {
            components: self.routes.connected_components(),
            rooms: self.routes.rooms(),
        };
        self.state.send_if_modified(|current| {
            if **current == snapshot {
                false
            } else {
                *current = Arc::new(snapshot);
                true
            }
        });
    }

    fn deliver(&self, out: Vec<(ConnId, Element)>) {
        for (conn, stanza) in out {
            if let Some(entry) = self.conns.get(&conn) {
                let _ = entry.outbound.send(stanza);
            }
        }
    }
}

async fn accept(listener: Option<&TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}
