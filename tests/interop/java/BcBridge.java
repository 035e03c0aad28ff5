// A bridge endpoint on Bouncy Castle's DTLS, driven by jitape's simulated focus over the
// external-bridge protocol (crates/jitape-sim/src/external.rs): JSON lines on stdin (allocate, accept, start,
// add, remove, close) and stdout (offer, connected, fact, log, error, closed).
//
// It plays the videobridge's part towards jitape on one loopback UDP socket: a controlling ICE
// agent (IceAgent), the DTLS server with the videobridge's configuration (JvbDtls), and SRTP
// written from the RFCs (Srtp). Once DTLS is up it sends every speaker's pre-encoded Opus frames
// on an absolute 20 ms schedule from the conference epoch (frame k leaves at epoch + (k+1)*20 ms),
// only inside talk windows, RTP timestamps jumping over silences, with the ssrc-audio-level
// extension (id 1, one-byte form), payload type 111.
//
// Usage: java BcBridge [--unreachable-candidate] [SRTP profile names, preference order...]
// --unreachable-candidate advertises a host candidate nothing listens on (a videobridge behind
// NAT whose advertised address does not reach jitape): jitape can then only answer the bridge's
// own checks and learn it as a peer-reflexive candidate.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;

import org.bouncycastle.tls.DTLSServerProtocol;
import org.bouncycastle.tls.SecurityParameters;
import org.bouncycastle.tls.crypto.impl.bc.BcTlsCrypto;

public final class BcBridge {
    private static final PrintStream OUT = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final long TICK_NS = 20_000_000L;

    private final List<Speaker> speakers = new CopyOnWriteArrayList<>();
    private final AtomicLong rtcpIn = new AtomicLong();
    private final AtomicLong rtcpVerified = new AtomicLong();
    private final AtomicLong skippedTicks = new AtomicLong();
    private final int[] profiles;
    private final BcTlsCrypto crypto = new BcTlsCrypto(RANDOM);
    private final JvbDtls.Identity identity;
    private final IceAgent ice;
    private volatile Srtp send;
    private volatile Srtp peer;
    private volatile Thread sender;
    private volatile boolean closing;
    private boolean unreachable;

    static synchronized void emit(Map<String, Object> event) {
        OUT.println(MiniJson.write(event));
    }

    static void event(String kind, Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("event", kind);
        for (int i = 0; i + 1 < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        emit(m);
    }

    static void log(String message) {
        event("log", "message", message);
    }

    static void fact(String key, Object value) {
        event("fact", "key", key, "value", String.valueOf(value));
    }

    BcBridge(int[] profiles) throws Exception {
        this.profiles = profiles;
        this.identity = new JvbDtls.Identity(crypto);
        this.ice = new IceAgent(InetAddress.getLoopbackAddress(), this::onMedia, BcBridge::log);
    }

    public static void main(String[] args) throws Exception {
        List<String> names = new ArrayList<>(List.of(args));
        boolean unreachable = names.remove("--unreachable-candidate");
        if (names.isEmpty()) {
            names = List.of("SRTP_AEAD_AES_128_GCM", "SRTP_AES128_CM_HMAC_SHA1_80");
        }
        int[] profiles = new int[names.size()];
        for (int i = 0; i < profiles.length; i++) {
            profiles[i] = JvbDtls.profile(names.get(i));
        }
        BcBridge bridge = new BcBridge(profiles);
        bridge.unreachable = unreachable;
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        try {
            while ((line = in.readLine()) != null) {
                if (line.isBlank()) {
                    continue;
                }
                if (!bridge.handle(MiniJson.object(line))) {
                    break;
                }
            }
        } catch (Exception e) {
            event("error", "message", e.toString());
        }
        bridge.close();
        System.exit(0);
    }

    /** One control message; false when the bridge is done. */
    private boolean handle(Map<String, Object> m) throws Exception {
        String op = String.valueOf(m.get("op"));
        switch (op) {
            case "allocate":
                for (Object s : (List<?>) m.get("speakers")) {
                    speakers.add(new Speaker(asMap(s)));
                }
                offer();
                return true;
            case "accept":
                accept(m);
                return true;
            case "start":
                start(((Number) m.get("epoch_unix")).doubleValue());
                return true;
            case "add":
                speakers.add(new Speaker(asMap(m.get("speaker"))));
                return true;
            case "remove":
                for (Speaker sp : speakers) {
                    if (sp.endpoint.equals(m.get("endpoint"))) {
                        sp.active = false;
                    }
                }
                return true;
            case "close":
                return false;
            default:
                log("ignoring unknown op " + op);
                return true;
        }
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> asMap(Object o) {
        return (Map<String, Object>) o;
    }

    private void offer() {
        Map<String, Object> cand = new LinkedHashMap<>();
        cand.put("foundation", "1");
        cand.put("component", 1);
        cand.put("priority", IceAgent.HOST_PRIORITY);
        cand.put("ip", "127.0.0.1");
        cand.put("port", unreachable ? unusedPort() : ice.port());
        event("offer", "ufrag", ice.localUfrag, "pwd", ice.localPwd,
            "fingerprint", Map.of("hash", "sha-256", "value", identity.fingerprint),
            "candidates", List.of(cand));
    }

    /** A loopback UDP port nothing listens on (bound, then released). */
    private static int unusedPort() {
        try (java.net.DatagramSocket s = new java.net.DatagramSocket(0, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        } catch (java.io.IOException e) {
            return 9;
        }
    }

    private void accept(Map<String, Object> m) throws Exception {
        Map<String, Object> fp = asMap(m.get("fingerprint"));
        if (!"sha-256".equalsIgnoreCase(String.valueOf(fp.get("hash")))
                || !"active".equals(fp.get("setup"))) {
            throw new IllegalArgumentException("jitape must answer setup=active with sha-256: " + fp);
        }
        List<InetSocketAddress> cands = new ArrayList<>();
        for (Object c : (List<?>) m.get("candidates")) {
            Map<String, Object> cm = asMap(c);
            cands.add(new InetSocketAddress(InetAddress.getByName(String.valueOf(cm.get("ip"))),
                ((Number) cm.get("port")).intValue()));
        }
        ice.start(String.valueOf(m.get("ufrag")), String.valueOf(m.get("pwd")), cands);
        String expected = String.valueOf(fp.get("value"));
        Thread t = new Thread(() -> handshake(expected), "dtls");
        t.setDaemon(true);
        t.start();
    }

    private void handshake(String expectedFingerprint) {
        try {
            int[] ours = new int[JvbDtls.JVB_CIPHER_SUITES.length];
            for (int i = 0; i < ours.length; i++) {
                ours[i] = JvbDtls.suite(JvbDtls.JVB_CIPHER_SUITES[i]);
            }
            JvbDtls.Server server = new JvbDtls.Server(crypto, identity, ours, profiles, expectedFingerprint);
            new DTLSServerProtocol().accept(server, new JvbDtls.Transport(ice));
            SecurityParameters sp = server.parameters();
            int[] ks = JvbDtls.keyAndSaltLength(server.chosenProfile);
            boolean gcm = server.chosenProfile == org.bouncycastle.tls.SRTPProtectionProfile.SRTP_AEAD_AES_128_GCM;
            send = new Srtp(gcm, server.keyingMaterial, ks[0], ks[1], true);
            peer = new Srtp(gcm, server.keyingMaterial, ks[0], ks[1], false);
            List<String> offered = new ArrayList<>();
            for (int p : server.offeredProfiles) {
                offered.add(JvbDtls.profileName(p));
            }
            fact("ice_role", "controlling");
            fact("ice_nominated", ice.nominated() != null);
            fact("dtls_role", "server");
            fact("dtls_version", sp.getNegotiatedVersion());
            fact("cipher_suite", JvbDtls.suiteName(sp.getCipherSuite()));
            fact("srtp_profile", JvbDtls.profileName(server.chosenProfile));
            fact("srtp_profiles_offered_by_jitape", String.join(" ", offered));
            List<String> suites = new ArrayList<>();
            for (int c : server.offeredSuites) {
                suites.add(JvbDtls.suiteName(c));
            }
            fact("cipher_suites_offered_by_jitape", String.join(" ", suites));
            fact("extended_master_secret", sp.isExtendedMasterSecret());
            fact("client_certificate_matches_signalled_fingerprint", server.clientCertificateMatched);
            event("connected");
        } catch (Exception e) {
            event("error", "message", "DTLS handshake failed: " + e);
        }
    }

    private void onMedia(byte[] p, InetSocketAddress from) {
        int pt = p.length > 1 ? p[1] & 0xff : 0;
        if (pt >= 192 && pt <= 223) {
            rtcpIn.incrementAndGet();
            Srtp keys = peer;
            if (keys != null && keys.verifyRtcp(p)) {
                rtcpVerified.incrementAndGet();
            }
        }
    }

    private void start(double epochUnix) {
        java.time.Instant now = java.time.Instant.now();
        double nowUnix = now.getEpochSecond() + now.getNano() / 1e9;
        long epochMono = System.nanoTime() + (long) ((epochUnix - nowUnix) * 1e9);
        Thread t = new Thread(() -> sendLoop(epochMono, epochUnix), "sender");
        t.setDaemon(true);
        sender = t;
        t.start();
    }

    private void sendLoop(long epochMono, double epochUnix) {
        long k = 0;
        while (!closing) {
            long due = epochMono + (k + 1) * TICK_NS;
            long wait = due - System.nanoTime();
            if (wait > 0) {
                try {
                    Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
                } catch (InterruptedException e) {
                    return;
                }
                continue;
            }
            long behind = -wait / TICK_NS;
            if (behind > 5) {
                skippedTicks.addAndGet(behind - 5);
                k += behind - 5;
            }
            Srtp keys = send;
            if (keys != null) {
                for (Speaker s : speakers) {
                    s.tick(k, keys, ice);
                }
            }
            k++;
        }
    }

    private void close() {
        closing = true;
        Thread t = sender;
        if (t != null) {
            try {
                t.join(1000);
            } catch (InterruptedException e) {
                // closing anyway
            }
        }
        fact("rtcp_packets_from_jitape", rtcpIn.get());
        fact("srtcp_packets_from_jitape_verified", rtcpVerified.get());
        fact("stun_requests_answered", ice.requestsAnswered.get());
        fact("stun_requests_refused", ice.requestsRefused.get());
        fact("consent_checks_answered_after_nomination", ice.consentChecksAnswered.get());
        fact("peer_sent_ice_controlled", ice.peerControlled.get() > 0);
        List<Object> log = new ArrayList<>();
        for (Speaker s : speakers) {
            log.add(s.log());
        }
        event("closed", "sent", Map.of("speakers", log, "skipped_ticks", skippedTicks.get()));
        ice.close();
    }

    /** One speaker's stream: SSRC, sequence, timestamps, talk windows and what was sent. */
    static final class Speaker {
        final String endpoint;
        final int ssrc;
        private int seq = RANDOM.nextInt(0x8000);
        private final int tsBase = RANDOM.nextInt();
        private final double[][] windows;
        private final byte[][] frames;
        private final int[] levels;
        volatile boolean active = true;
        private int spurtWindow = -1;
        private long spurtStart;
        private final List<Map<String, Object>> sent = new ArrayList<>();

        Speaker(Map<String, Object> m) {
            endpoint = String.valueOf(m.get("endpoint"));
            ssrc = (int) ((Number) m.get("ssrc")).longValue();
            List<?> w = (List<?>) m.get("windows");
            windows = new double[w.size()][];
            for (int i = 0; i < w.size(); i++) {
                List<?> pair = (List<?>) w.get(i);
                windows[i] = new double[] {((Number) pair.get(0)).doubleValue(), ((Number) pair.get(1)).doubleValue()};
            }
            List<?> f = (List<?>) m.get("frames");
            List<?> l = (List<?>) m.get("levels");
            frames = new byte[f.size()][];
            levels = new int[f.size()];
            for (int i = 0; i < f.size(); i++) {
                frames[i] = Base64.getDecoder().decode(String.valueOf(f.get(i)));
                levels[i] = ((Number) l.get(i)).intValue();
            }
        }

        void tick(long k, Srtp keys, IceAgent ice) {
            double t = k * 0.020;
            int w = -1;
            for (int i = 0; i < windows.length; i++) {
                if (windows[i][0] <= t + 1e-9 && t + 1e-9 < windows[i][1]) {
                    w = i;
                }
            }
            if (w < 0 || !active || frames.length == 0) {
                spurtWindow = -1;
                return;
            }
            boolean marker = w != spurtWindow;
            if (marker) {
                spurtWindow = w;
                spurtStart = k;
            }
            int f = (int) ((k - spurtStart) % frames.length);
            byte[] rtp = packet(marker, (int) (tsBase + k * 960), frames[f], levels[f]);
            try {
                ice.send(keys.protect(rtp, 20));
                record(w, seq);
            } catch (Exception e) {
                BcBridge.log("sending failed: " + e);
            }
            seq = (seq + 1) & 0xffff;
        }

        /** RTP: pt 111, one-byte header extension with audio level (id 1, V=1). */
        private byte[] packet(boolean marker, int ts, byte[] opus, int level) {
            ByteBuffer b = ByteBuffer.allocate(20 + opus.length);
            b.put((byte) 0x90).put((byte) ((marker ? 0x80 : 0) | 111)).putShort((short) seq);
            b.putInt(ts).putInt(ssrc);
            b.putShort((short) 0xBEDE).putShort((short) 1);
            b.put((byte) 0x10).put((byte) (0x80 | (level & 0x7f))).put((byte) 0).put((byte) 0);
            b.put(opus);
            return b.array();
        }

        private void record(int w, int s) {
            java.time.Instant now = java.time.Instant.now();
            double at = now.getEpochSecond() + now.getNano() / 1e9;
            Map<String, Object> last = sent.isEmpty() ? null : sent.get(sent.size() - 1);
            if (last != null && ((Number) last.get("window")).intValue() == w) {
                last.put("last_unix", at);
                last.put("last_seq", s);
                last.put("packets", ((Number) last.get("packets")).intValue() + 1);
                return;
            }
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("window", w);
            e.put("start", windows[w][0]);
            e.put("end", windows[w][1]);
            e.put("first_unix", at);
            e.put("last_unix", at);
            e.put("first_seq", s);
            e.put("last_seq", s);
            e.put("packets", 1);
            sent.add(e);
        }

        synchronized Map<String, Object> log() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("endpoint", endpoint);
            m.put("ssrc", ssrc & 0xffffffffL);
            m.put("windows", new ArrayList<>(sent));
            return m;
        }
    }
}
