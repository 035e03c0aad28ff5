// A minimal full, CONTROLLING ICE agent on one UDP socket, as the videobridge is towards an
// endpoint (RFC 8445 with STUN of RFC 5389 and consent freshness of RFC 7675): one local host
// candidate; it answers the peer's Binding requests (short-term credentials, XOR-MAPPED-ADDRESS,
// MESSAGE-INTEGRITY, FINGERPRINT), learns peer-reflexive addresses from them, checks the peer's
// candidates, nominates the first pair that succeeds with a second check carrying USE-CANDIDATE
// (regular nomination), then keeps sending consent checks on it every 4-6 s (the videobridge's
// ice4j override: interval 5 s, randomized by 0.8-1.2, jvb/src/main/resources/application.conf).
//
// The socket is demultiplexed by first byte (RFC 7983): 0-3 STUN (handled here), 20-63 DTLS
// (queued for the DTLS server), 128-191 RTP/RTCP (handed to a callback).

import java.io.ByteArrayOutputStream;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BiConsumer;
import java.util.zip.CRC32;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

final class IceAgent {
    static final int BINDING_REQUEST = 0x0001;
    static final int BINDING_SUCCESS = 0x0101;
    static final int BINDING_ERROR = 0x0111;
    static final int MAGIC = 0x2112A442;
    static final int USERNAME = 0x0006;
    static final int MESSAGE_INTEGRITY = 0x0008;
    static final int ERROR_CODE = 0x0009;
    static final int XOR_MAPPED_ADDRESS = 0x0020;
    static final int PRIORITY = 0x0024;
    static final int USE_CANDIDATE = 0x0025;
    static final int FINGERPRINT = 0x8028;
    static final int ICE_CONTROLLED = 0x8029;
    static final int ICE_CONTROLLING = 0x802A;

    /** Host candidate priority for component 1 (RFC 8445 5.1.2.1, type preference 126). */
    static final long HOST_PRIORITY = (126L << 24) | (65535L << 8) | 255;
    /** The priority of a peer-reflexive candidate we would learn (type preference 110). */
    static final long PRFLX_PRIORITY = (110L << 24) | (65535L << 8) | 255;

    private static final SecureRandom RANDOM = new SecureRandom();

    final DatagramSocket socket;
    final String localUfrag = token(8);
    final String localPwd = token(24);
    private final long tieBreaker = RANDOM.nextLong();
    private volatile String remoteUfrag;
    private volatile String remotePwd;
    private final List<InetSocketAddress> remotes = new CopyOnWriteArrayList<>();
    private final Map<String, Check> pending = new ConcurrentHashMap<>();
    private volatile InetSocketAddress valid;
    private volatile InetSocketAddress nominated;
    private volatile InetSocketAddress lastDtlsFrom;
    private volatile boolean running = true;

    final BlockingQueue<byte[]> dtlsIn = new LinkedBlockingQueue<>();
    final AtomicLong requestsAnswered = new AtomicLong();
    final AtomicLong requestsRefused = new AtomicLong();
    final AtomicLong consentChecksAnswered = new AtomicLong();
    final AtomicLong peerControlled = new AtomicLong();
    private final BiConsumer<byte[], InetSocketAddress> media;
    private final java.util.function.Consumer<String> log;

    private record Check(InetSocketAddress to, boolean nominate, boolean consent) {}

    IceAgent(InetAddress bind, BiConsumer<byte[], InetSocketAddress> media,
            java.util.function.Consumer<String> log) throws Exception {
        this.socket = new DatagramSocket(new InetSocketAddress(bind, 0));
        this.media = media;
        this.log = log;
        Thread reader = new Thread(this::readLoop, "ice-reader");
        reader.setDaemon(true);
        reader.start();
    }

    static String token(int n) {
        String alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < n; i++) {
            b.append(alphabet.charAt(RANDOM.nextInt(alphabet.length())));
        }
        return b.toString();
    }

    int port() {
        return socket.getLocalPort();
    }

    /** The peer's credentials and candidates (from jitape's session-accept): checks start. */
    void start(String ufrag, String pwd, List<InetSocketAddress> candidates) {
        remoteUfrag = ufrag;
        remotePwd = pwd;
        for (InetSocketAddress c : candidates) {
            if (!remotes.contains(c)) {
                remotes.add(c);
            }
        }
        Thread t = new Thread(this::checkLoop, "ice-checks");
        t.setDaemon(true);
        t.start();
    }

    InetSocketAddress nominated() {
        return nominated;
    }

    boolean waitNominated(long millis) throws InterruptedException {
        long end = System.currentTimeMillis() + millis;
        while (nominated == null && System.currentTimeMillis() < end) {
            Thread.sleep(10);
        }
        return nominated != null;
    }

    /** Sends on the nominated pair (or, before nomination, to where DTLS came from). */
    void send(byte[] data) throws java.io.IOException {
        InetSocketAddress to = nominated != null ? nominated : lastDtlsFrom;
        if (to == null) {
            to = valid;
        }
        if (to == null) {
            throw new java.io.IOException("no ICE pair to send on yet");
        }
        socket.send(new DatagramPacket(data, data.length, to));
    }

    void close() {
        running = false;
        socket.close();
    }

    private void checkLoop() {
        long nextConsent = 0;
        while (running) {
            try {
                if (nominated == null) {
                    InetSocketAddress ok = valid;
                    if (ok != null) {
                        sendCheck(ok, true, false);
                    } else {
                        for (InetSocketAddress r : remotes) {
                            sendCheck(r, false, false);
                        }
                    }
                    Thread.sleep(50);
                } else {
                    long now = System.currentTimeMillis();
                    if (now >= nextConsent) {
                        sendCheck(nominated, false, true);
                        nextConsent = now + (long) (5000 * (0.8 + 0.4 * RANDOM.nextDouble()));
                    }
                    Thread.sleep(100);
                }
            } catch (InterruptedException e) {
                return;
            } catch (Exception e) {
                if (running) {
                    log.accept("ICE check failed: " + e);
                }
            }
        }
    }

    private void sendCheck(InetSocketAddress to, boolean nominate, boolean consent) throws Exception {
        byte[] txid = new byte[12];
        RANDOM.nextBytes(txid);
        ByteArrayOutputStream attrs = new ByteArrayOutputStream();
        attr(attrs, USERNAME, (remoteUfrag + ":" + localUfrag).getBytes(StandardCharsets.UTF_8));
        attr(attrs, PRIORITY, ByteBuffer.allocate(4).putInt((int) PRFLX_PRIORITY).array());
        attr(attrs, ICE_CONTROLLING, ByteBuffer.allocate(8).putLong(tieBreaker).array());
        if (nominate) {
            attr(attrs, USE_CANDIDATE, new byte[0]);
        }
        byte[] msg = finish(BINDING_REQUEST, txid, attrs.toByteArray(), remotePwd);
        pending.put(Arrays.toString(txid), new Check(to, nominate, consent));
        socket.send(new DatagramPacket(msg, msg.length, to));
    }

    private void readLoop() {
        byte[] buf = new byte[2048];
        while (running) {
            DatagramPacket p = new DatagramPacket(buf, buf.length);
            try {
                socket.receive(p);
            } catch (Exception e) {
                return;
            }
            byte[] data = Arrays.copyOf(p.getData(), p.getLength());
            InetSocketAddress from = (InetSocketAddress) p.getSocketAddress();
            int b0 = data.length > 0 ? data[0] & 0xff : -1;
            try {
                if (b0 >= 0 && b0 <= 3) {
                    onStun(data, from);
                } else if (b0 >= 20 && b0 <= 63) {
                    lastDtlsFrom = from;
                    dtlsIn.offer(data);
                } else if (b0 >= 128 && b0 <= 191) {
                    media.accept(data, from);
                }
            } catch (Exception e) {
                log.accept("dropped a packet from the peer: " + e);
            }
        }
    }

    private void onStun(byte[] m, InetSocketAddress from) throws Exception {
        if (m.length < 20 || ByteBuffer.wrap(m, 4, 4).getInt() != MAGIC) {
            return;
        }
        int type = ByteBuffer.wrap(m, 0, 2).getShort() & 0xffff;
        byte[] txid = Arrays.copyOfRange(m, 8, 20);
        if (type == BINDING_REQUEST) {
            onRequest(m, txid, from);
        } else if (type == BINDING_SUCCESS || type == BINDING_ERROR) {
            Check c = pending.remove(Arrays.toString(txid));
            if (c == null || !verify(m, remotePwd)) {
                return;
            }
            if (type == BINDING_ERROR) {
                log.accept("Binding error response " + errorCode(m) + " from the peer");
                return;
            }
            if (c.nominate && nominated == null) {
                nominated = c.to;
                log.accept("ICE pair nominated");
            } else if (!c.consent && valid == null) {
                valid = c.to;
            }
        }
    }

    private void onRequest(byte[] m, byte[] txid, InetSocketAddress from) throws Exception {
        byte[] user = find(m, USERNAME);
        String expected = localUfrag + ":";
        if (user == null || !new String(user, StandardCharsets.UTF_8).startsWith(expected)
                || !verify(m, localPwd)) {
            requestsRefused.incrementAndGet();
            return;
        }
        if (find(m, ICE_CONTROLLED) != null) {
            peerControlled.incrementAndGet();
        }
        if (!remotes.contains(from)) {
            remotes.add(from); // peer-reflexive, as ice4j learns it
        }
        ByteArrayOutputStream attrs = new ByteArrayOutputStream();
        attr(attrs, XOR_MAPPED_ADDRESS, xorAddress(from, txid));
        byte[] resp = finish(BINDING_SUCCESS, txid, attrs.toByteArray(), localPwd);
        socket.send(new DatagramPacket(resp, resp.length, from));
        if (nominated != null) {
            consentChecksAnswered.incrementAndGet();
        }
        requestsAnswered.incrementAndGet();
    }

    private static byte[] xorAddress(InetSocketAddress a, byte[] txid) {
        byte[] ip = a.getAddress().getAddress();
        ByteBuffer b = ByteBuffer.allocate(4 + ip.length);
        b.put((byte) 0).put((byte) (ip.length == 4 ? 1 : 2));
        b.putShort((short) (a.getPort() ^ (MAGIC >>> 16)));
        byte[] key = ByteBuffer.allocate(16).putInt(MAGIC).put(txid).array();
        for (int i = 0; i < ip.length; i++) {
            b.put((byte) (ip[i] ^ key[i]));
        }
        return b.array();
    }

    private static void attr(ByteArrayOutputStream out, int type, byte[] value) {
        out.write(type >> 8);
        out.write(type);
        out.write(value.length >> 8);
        out.write(value.length);
        out.writeBytes(value);
        for (int i = value.length; i % 4 != 0; i++) {
            out.write(0);
        }
    }

    /** Header + attributes + MESSAGE-INTEGRITY (HMAC-SHA1, key = pwd) + FINGERPRINT. */
    static byte[] finish(int type, byte[] txid, byte[] attrs, String pwd) throws Exception {
        ByteBuffer b = ByteBuffer.allocate(20 + attrs.length + 24 + 8);
        b.putShort((short) type).putShort((short) (attrs.length + 24)).putInt(MAGIC).put(txid);
        b.put(attrs);
        byte[] head = Arrays.copyOf(b.array(), 20 + attrs.length);
        b.putShort((short) MESSAGE_INTEGRITY).putShort((short) 20).put(hmac(pwd, head));
        b.putShort(2, (short) (attrs.length + 24 + 8));
        CRC32 crc = new CRC32();
        crc.update(b.array(), 0, 20 + attrs.length + 24);
        b.putShort((short) FINGERPRINT).putShort((short) 4).putInt((int) (crc.getValue() ^ 0x5354554eL));
        return b.array();
    }

    private static byte[] hmac(String pwd, byte[] data) throws Exception {
        Mac mac = Mac.getInstance("HmacSHA1");
        mac.init(new SecretKeySpec(pwd.getBytes(StandardCharsets.UTF_8), "HmacSHA1"));
        return mac.doFinal(data);
    }

    /** The value of the first attribute of `type`, or null. */
    static byte[] find(byte[] m, int type) {
        int off = 20;
        int end = Math.min(m.length, 20 + (ByteBuffer.wrap(m, 2, 2).getShort() & 0xffff));
        while (off + 4 <= end) {
            int t = ByteBuffer.wrap(m, off, 2).getShort() & 0xffff;
            int len = ByteBuffer.wrap(m, off + 2, 2).getShort() & 0xffff;
            if (off + 4 + len > end) {
                return null;
            }
            if (t == type) {
                return Arrays.copyOfRange(m, off + 4, off + 4 + len);
            }
            off += 4 + ((len + 3) & ~3);
        }
        return null;
    }

    private static int offsetOf(byte[] m, int type) {
        int off = 20;
        while (off + 4 <= m.length) {
            int t = ByteBuffer.wrap(m, off, 2).getShort() & 0xffff;
            int len = ByteBuffer.wrap(m, off + 2, 2).getShort() & 0xffff;
            if (t == type) {
                return off;
            }
            off += 4 + ((len + 3) & ~3);
        }
        return -1;
    }

    /** Checks MESSAGE-INTEGRITY with `pwd` (RFC 5389 15.4). */
    static boolean verify(byte[] m, String pwd) throws Exception {
        int at = offsetOf(m, MESSAGE_INTEGRITY);
        if (pwd == null || at < 0 || at + 24 > m.length) {
            return false;
        }
        byte[] head = Arrays.copyOf(m, at);
        ByteBuffer.wrap(head).putShort(2, (short) (at - 20 + 24));
        byte[] expect = hmac(pwd, head);
        return java.security.MessageDigest.isEqual(expect, Arrays.copyOfRange(m, at + 4, at + 24));
    }

    private static String errorCode(byte[] m) {
        byte[] e = find(m, ERROR_CODE);
        if (e == null || e.length < 4) {
            return "?";
        }
        return Integer.toString((e[2] & 7) * 100 + (e[3] & 0xff));
    }
}
