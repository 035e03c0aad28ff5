// The DTLS server side of the bridge with Bouncy Castle, configured the way the videobridge's
// jitsi-media-transform configures it (TlsServerImpl.kt, DtlsUtils.kt, DtlsConfig and
// reference.conf; see docs/protocol.md): DTLS 1.2 only; cipher suites from jmt.dtls.cipher-suites;
// a self-signed ECDSA certificate on secp256r1 signed with SHA256withECDSA, valid from a day ago
// for 7 days; a CertificateRequest for ecdsa_sign with sha256/ecdsa; the client's certificate
// checked against the fingerprint signalled for it; use_srtp answered with the first of our
// profiles (jmt.srtp.protection-profiles order) that the client offers; SRTP keying material
// exported with the "EXTRACTOR-dtls_srtp" label (RFC 5764).

import java.math.BigInteger;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.MessageDigest;
import java.security.spec.ECGenParameterSpec;
import java.util.Date;
import java.util.Hashtable;
import java.util.Vector;
import java.util.concurrent.TimeUnit;

import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.crypto.params.AsymmetricKeyParameter;
import org.bouncycastle.crypto.util.PrivateKeyFactory;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.tls.AlertDescription;
import org.bouncycastle.tls.Certificate;
import org.bouncycastle.tls.CertificateRequest;
import org.bouncycastle.tls.CipherSuite;
import org.bouncycastle.tls.ClientCertificateType;
import org.bouncycastle.tls.DatagramTransport;
import org.bouncycastle.tls.DefaultTlsServer;
import org.bouncycastle.tls.ExporterLabel;
import org.bouncycastle.tls.HashAlgorithm;
import org.bouncycastle.tls.ProtocolVersion;
import org.bouncycastle.tls.SRTPProtectionProfile;
import org.bouncycastle.tls.SecurityParameters;
import org.bouncycastle.tls.SignatureAlgorithm;
import org.bouncycastle.tls.SignatureAndHashAlgorithm;
import org.bouncycastle.tls.TlsCredentialedSigner;
import org.bouncycastle.tls.TlsFatalAlert;
import org.bouncycastle.tls.TlsSRTPUtils;
import org.bouncycastle.tls.TlsUtils;
import org.bouncycastle.tls.UseSRTPData;
import org.bouncycastle.tls.crypto.TlsCertificate;
import org.bouncycastle.tls.crypto.TlsCryptoParameters;
import org.bouncycastle.tls.crypto.impl.bc.BcDefaultTlsCredentialedSigner;
import org.bouncycastle.tls.crypto.impl.bc.BcTlsCertificate;
import org.bouncycastle.tls.crypto.impl.bc.BcTlsCrypto;

final class JvbDtls {
    /** jmt.dtls.cipher-suites, in the videobridge's order. */
    static final String[] JVB_CIPHER_SUITES = {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    };

    static int suite(String name) throws Exception {
        return CipherSuite.class.getField(name).getInt(null);
    }

    static String suiteName(int value) {
        for (java.lang.reflect.Field f : CipherSuite.class.getFields()) {
            try {
                if (f.getName().startsWith("TLS_") && f.getInt(null) == value) {
                    return f.getName();
                }
            } catch (IllegalAccessException e) {
                // not a constant
            }
        }
        return "0x" + Integer.toHexString(value);
    }

    static int profile(String name) throws Exception {
        return SRTPProtectionProfile.class.getField(name).getInt(null);
    }

    static String profileName(int value) {
        for (java.lang.reflect.Field f : SRTPProtectionProfile.class.getFields()) {
            try {
                if (f.getName().startsWith("SRTP_") && f.getInt(null) == value) {
                    return f.getName();
                }
            } catch (IllegalAccessException e) {
                // not a constant
            }
        }
        return "0x" + Integer.toHexString(value);
    }

    /** Key and salt lengths of a profile (RFC 5764 4.1.2, RFC 7714 12). */
    static int[] keyAndSaltLength(int profile) {
        switch (profile) {
            case SRTPProtectionProfile.SRTP_AES128_CM_HMAC_SHA1_80:
            case SRTPProtectionProfile.SRTP_AES128_CM_HMAC_SHA1_32:
                return new int[] {16, 14};
            case SRTPProtectionProfile.SRTP_AEAD_AES_128_GCM:
                return new int[] {16, 12};
            default:
                throw new IllegalArgumentException("unsupported profile " + profileName(profile));
        }
    }

    /** The bridge's certificate, as DtlsUtils.generateCertificateInfo makes it. */
    static final class Identity {
        final KeyPair keys;
        final Certificate certificate;
        final String fingerprint;

        Identity(BcTlsCrypto crypto) throws Exception {
            KeyPairGenerator gen = KeyPairGenerator.getInstance("EC");
            gen.initialize(new ECGenParameterSpec("secp256r1"));
            keys = gen.generateKeyPair();
            long now = System.currentTimeMillis();
            X500Name cn = new X500Name("CN=TODO-APP-NAME TODO-APP-VERSION");
            JcaX509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(cn,
                BigInteger.valueOf(now), new Date(now - TimeUnit.DAYS.toMillis(1)),
                new Date(now + TimeUnit.DAYS.toMillis(7)), cn, keys.getPublic());
            byte[] der = b.build(new JcaContentSignerBuilder("SHA256withECDSA")
                .build(keys.getPrivate())).getEncoded();
            certificate = new Certificate(new TlsCertificate[] {new BcTlsCertificate(crypto, der)});
            fingerprint = fingerprint(der);
        }
    }

    static String fingerprint(byte[] der) throws Exception {
        byte[] d = MessageDigest.getInstance("SHA-256").digest(der);
        StringBuilder s = new StringBuilder();
        for (byte x : d) {
            if (s.length() > 0) {
                s.append(':');
            }
            s.append(String.format("%02X", x & 0xff));
        }
        return s.toString();
    }

    /** A TlsServer shaped like jitsi-media-transform's TlsServerImpl. */
    static final class Server extends DefaultTlsServer {
        private final Identity identity;
        private final int[] suites;
        private final int[] ourProfiles;
        private final String expectedClientFingerprint;
        int chosenProfile = -1;
        int[] offeredProfiles = new int[0];
        int[] offeredSuites = new int[0];
        boolean clientCertificateMatched;
        byte[] keyingMaterial;

        Server(BcTlsCrypto crypto, Identity identity, int[] suites, int[] profiles,
                String expectedClientFingerprint) {
            super(crypto);
            this.identity = identity;
            this.suites = suites;
            this.ourProfiles = profiles;
            this.expectedClientFingerprint = expectedClientFingerprint;
        }

        @Override
        protected ProtocolVersion[] getSupportedVersions() {
            return new ProtocolVersion[] {ProtocolVersion.DTLSv12};
        }

        @Override
        public int[] getCipherSuites() {
            return suites;
        }

        @Override
        public void notifyOfferedCipherSuites(int[] offered) throws java.io.IOException {
            super.notifyOfferedCipherSuites(offered);
            offeredSuites = offered.clone();
        }

        @Override
        public void processClientExtensions(Hashtable clientExtensions) throws java.io.IOException {
            super.processClientExtensions(clientExtensions);
            UseSRTPData srtp = TlsSRTPUtils.getUseSRTPExtension(clientExtensions);
            if (srtp == null) {
                throw new TlsFatalAlert(AlertDescription.handshake_failure, "no use_srtp");
            }
            offeredProfiles = srtp.getProtectionProfiles();
            for (int ours : ourProfiles) {
                for (int theirs : offeredProfiles) {
                    if (ours == theirs) {
                        chosenProfile = ours;
                        return;
                    }
                }
            }
            throw new TlsFatalAlert(AlertDescription.handshake_failure, "no common SRTP profile");
        }

        @Override
        @SuppressWarnings("unchecked")
        public Hashtable getServerExtensions() throws java.io.IOException {
            Hashtable ext = super.getServerExtensions();
            if (ext == null) {
                ext = new Hashtable();
            }
            if (TlsSRTPUtils.getUseSRTPExtension(ext) == null) {
                TlsSRTPUtils.addUseSRTPExtension(ext,
                    new UseSRTPData(new int[] {chosenProfile}, TlsUtils.EMPTY_BYTES));
            }
            return ext;
        }

        @Override
        protected TlsCredentialedSigner getECDSASignerCredentials() throws java.io.IOException {
            AsymmetricKeyParameter key = PrivateKeyFactory.createKey(identity.keys.getPrivate().getEncoded());
            return new BcDefaultTlsCredentialedSigner(new TlsCryptoParameters(context),
                (BcTlsCrypto) context.getCrypto(), key, identity.certificate,
                new SignatureAndHashAlgorithm(HashAlgorithm.sha256, SignatureAlgorithm.ecdsa));
        }

        @Override
        public CertificateRequest getCertificateRequest() {
            Vector<SignatureAndHashAlgorithm> algs = new Vector<>();
            algs.add(new SignatureAndHashAlgorithm(HashAlgorithm.sha256, SignatureAlgorithm.ecdsa));
            return new CertificateRequest(new short[] {ClientCertificateType.ecdsa_sign}, algs, null);
        }

        @Override
        public void notifyClientCertificate(Certificate clientCertificate) throws java.io.IOException {
            if (clientCertificate == null || clientCertificate.isEmpty()) {
                throw new TlsFatalAlert(AlertDescription.bad_certificate, "no client certificate");
            }
            try {
                String got = fingerprint(clientCertificate.getCertificateAt(0).getEncoded());
                clientCertificateMatched = got.equalsIgnoreCase(expectedClientFingerprint);
            } catch (Exception e) {
                throw new TlsFatalAlert(AlertDescription.bad_certificate, e);
            }
            if (!clientCertificateMatched) {
                throw new TlsFatalAlert(AlertDescription.bad_certificate, "fingerprint mismatch");
            }
        }

        @Override
        public int getHandshakeTimeoutMillis() {
            return 30_000;
        }

        @Override
        public void notifyHandshakeComplete() throws java.io.IOException {
            super.notifyHandshakeComplete();
            int[] ks = keyAndSaltLength(chosenProfile);
            SecurityParameters sp = context.getSecurityParameters();
            if (!sp.isExtendedMasterSecret()) {
                throw new TlsFatalAlert(AlertDescription.internal_error,
                    "no extended master secret: keying material export needs the videobridge's workaround");
            }
            keyingMaterial = context.exportKeyingMaterial(ExporterLabel.dtls_srtp, null, 2 * (ks[0] + ks[1]));
        }

        SecurityParameters parameters() {
            return context.getSecurityParameters();
        }
    }

    /** BC's view of the socket: DTLS records the ICE agent demultiplexed, sent on its pair. */
    static final class Transport implements DatagramTransport {
        private final IceAgent ice;

        Transport(IceAgent ice) {
            this.ice = ice;
        }

        @Override
        public int getReceiveLimit() {
            return 1500 - 20 - 8;
        }

        @Override
        public int getSendLimit() {
            return 1500 - 84 - 8;
        }

        @Override
        public int receive(byte[] buf, int off, int len, int waitMillis) throws java.io.IOException {
            try {
                byte[] p = ice.dtlsIn.poll(waitMillis, TimeUnit.MILLISECONDS);
                if (p == null) {
                    return -1;
                }
                int n = Math.min(len, p.length);
                System.arraycopy(p, 0, buf, off, n);
                return n;
            } catch (InterruptedException e) {
                throw new java.io.InterruptedIOException();
            }
        }

        @Override
        public void send(byte[] buf, int off, int len) throws java.io.IOException {
            ice.send(java.util.Arrays.copyOfRange(buf, off, off + len));
        }

        @Override
        public void close() {
        }
    }
}
