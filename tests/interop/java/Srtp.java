// SRTP for the negotiated DTLS-SRTP profile, written from the RFCs with javax.crypto only:
// the keys from the exported keying material (RFC 5764 4.2: client key | server key | client
// salt | server salt), the AES-CM key derivation (RFC 3711 4.3.3, key derivation rate 0; for
// AEAD the 96-bit master salt is used zero-padded, RFC 7714 12), RTP protection with
// AES_CM_128 + HMAC-SHA1-80 (RFC 3711 4.1.1, 4.2) or AEAD_AES_128_GCM (RFC 7714 8), and the
// check of SRTCP packets from the peer (RFC 3711 3.4, RFC 7714 9) with the peer's keys.

import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;

final class Srtp {
    private final boolean gcm;
    private final byte[] rtpKey;
    private final byte[] rtpSalt;
    private final byte[] rtpAuth;
    private final byte[] rtcpKey;
    private final byte[] rtcpSalt;
    private final byte[] rtcpAuth;
    private final Map<Integer, int[]> roc = new HashMap<>();

    /**
     * One direction's session keys. `local` picks whose master key: the server's (what the
     * bridge sends with) or the client's (what jitape sends with).
     */
    Srtp(boolean gcm, byte[] material, int keyLen, int saltLen, boolean server) throws Exception {
        this.gcm = gcm;
        byte[] masterKey = Arrays.copyOfRange(material, server ? keyLen : 0, server ? 2 * keyLen : keyLen);
        int saltAt = 2 * keyLen + (server ? saltLen : 0);
        byte[] masterSalt = Arrays.copyOfRange(material, saltAt, saltAt + saltLen);
        int sessionSalt = gcm ? 12 : 14;
        rtpKey = kdf(masterKey, masterSalt, 0, 16);
        rtpAuth = gcm ? null : kdf(masterKey, masterSalt, 1, 20);
        rtpSalt = kdf(masterKey, masterSalt, 2, sessionSalt);
        rtcpKey = kdf(masterKey, masterSalt, 3, 16);
        rtcpAuth = gcm ? null : kdf(masterKey, masterSalt, 4, 20);
        rtcpSalt = kdf(masterKey, masterSalt, 5, sessionSalt);
    }

    /** AES-CM PRF: x = label<<48 XOR master salt (112 bits), keystream from IV = x * 2^16. */
    static byte[] kdf(byte[] masterKey, byte[] masterSalt, int label, int len) throws Exception {
        byte[] iv = new byte[16];
        System.arraycopy(masterSalt, 0, iv, 0, Math.min(14, masterSalt.length));
        iv[7] ^= (byte) label;
        Cipher c = Cipher.getInstance("AES/CTR/NoPadding");
        c.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(masterKey, "AES"), new IvParameterSpec(iv));
        return c.doFinal(new byte[len]);
    }

    /** The rollover counter for `seq` of `ssrc` (sender side: sequence numbers only go up). */
    private int rollover(int ssrc, int seq) {
        int[] st = roc.computeIfAbsent(ssrc, k -> new int[] {0, seq});
        if (seq < st[1] && st[1] - seq > 0x8000) {
            st[0]++;
        }
        st[1] = seq;
        return st[0];
    }

    /** Protects a plain RTP packet whose header (with extension) is `headerLen` bytes. */
    byte[] protect(byte[] rtp, int headerLen) throws Exception {
        ByteBuffer b = ByteBuffer.wrap(rtp);
        int seq = b.getShort(2) & 0xffff;
        int ssrc = b.getInt(8);
        int r = rollover(ssrc, seq);
        byte[] header = Arrays.copyOf(rtp, headerLen);
        byte[] payload = Arrays.copyOfRange(rtp, headerLen, rtp.length);
        if (gcm) {
            byte[] iv = new byte[12];
            ByteBuffer.wrap(iv).putShort((short) 0).putInt(ssrc).putInt(r).putShort((short) seq);
            xor(iv, rtpSalt);
            Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
            c.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(rtpKey, "AES"), new GCMParameterSpec(128, iv));
            c.updateAAD(header);
            return concat(header, c.doFinal(payload));
        }
        byte[] iv = new byte[16];
        System.arraycopy(rtpSalt, 0, iv, 0, 14);
        byte[] idx = ByteBuffer.allocate(16).putInt(0).putInt(ssrc).putInt(r).putShort((short) seq)
            .putShort((short) 0).array();
        xor(iv, idx);
        Cipher c = Cipher.getInstance("AES/CTR/NoPadding");
        c.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(rtpKey, "AES"), new IvParameterSpec(iv));
        byte[] out = concat(header, c.doFinal(payload));
        Mac mac = Mac.getInstance("HmacSHA1");
        mac.init(new SecretKeySpec(rtpAuth, "HmacSHA1"));
        mac.update(out);
        mac.update(ByteBuffer.allocate(4).putInt(r).array());
        return concat(out, Arrays.copyOf(mac.doFinal(), 10));
    }

    /** Whether an SRTCP packet authenticates (and, for GCM, decrypts) with these keys. */
    boolean verifyRtcp(byte[] p) {
        try {
            if (gcm) {
                if (p.length < 8 + 16 + 4) {
                    return false;
                }
                int n = p.length;
                byte[] trailer = Arrays.copyOfRange(p, n - 4, n);
                int index = ByteBuffer.wrap(trailer).getInt() & 0x7fffffff;
                int ssrc = ByteBuffer.wrap(p).getInt(4);
                byte[] iv = new byte[12];
                ByteBuffer.wrap(iv).putShort((short) 0).putInt(ssrc).putShort((short) 0).putInt(index);
                xor(iv, rtcpSalt);
                Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
                c.init(Cipher.DECRYPT_MODE, new SecretKeySpec(rtcpKey, "AES"), new GCMParameterSpec(128, iv));
                c.updateAAD(Arrays.copyOf(p, 8));
                c.updateAAD(trailer);
                c.doFinal(Arrays.copyOfRange(p, 8, n - 4));
                return true;
            }
            if (p.length < 8 + 4 + 10) {
                return false;
            }
            Mac mac = Mac.getInstance("HmacSHA1");
            mac.init(new SecretKeySpec(rtcpAuth, "HmacSHA1"));
            mac.update(p, 0, p.length - 10);
            byte[] tag = Arrays.copyOf(mac.doFinal(), 10);
            return MessageDigest.isEqual(tag, Arrays.copyOfRange(p, p.length - 10, p.length));
        } catch (Exception e) {
            return false;
        }
    }

    private static void xor(byte[] into, byte[] with) {
        for (int i = 0; i < into.length && i < with.length; i++) {
            into[i] ^= with[i];
        }
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
