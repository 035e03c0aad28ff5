"""A bridge endpoint on aiortc (aioice ICE, OpenSSL DTLS, libsrtp SRTP), driven by jitape's
simulated focus over the external-bridge protocol (crates/jitape-sim/src/external.rs): JSON lines on stdin
(allocate, accept, start, add, remove, close) and stdout (offer, connected, fact, log, error,
closed).

It plays the videobridge's part towards jitape: it is the SDP offerer of its own peer connection
(so ICE controlling, DTLS `actpass`), bundles one sendonly audio m-line per speaker slot on one
loopback transport, offers the videobridge's SRTP profiles in its order, and becomes the DTLS
server when jitape answers `setup=active`. The RTP it sends is shaped like the videobridge's
forwarded audio, so it is built here and handed to aiortc's DTLS transport for SRTP: payload
type 111, the ssrc-audio-level extension (id 1, one-byte form) and nothing else, marker on the
first packet of a talk spurt, frame k of the schedule sent at epoch + (k+1) * 20 ms, nothing
during silences and RTP timestamps that jump over them (DTX / the bridge dropping silence).

Run with the interop virtualenv's python (scripts/ensure-interop).
"""

import asyncio
import base64
import json
import random
import struct
import sys
import time

import aioice.ice

# Loopback only: aioice gathers every interface address except 127.0.0.1; the test bridge must
# offer 127.0.0.1 and nothing else.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

from aiortc import (  # noqa: E402
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc import rtcdtlstransport  # noqa: E402
from aiortc.rtcconfiguration import RTCBundlePolicy  # noqa: E402

# jmt.srtp.protection-profiles, in the videobridge's order (docs/protocol.md).
JVB_PROFILES = [rtcdtlstransport.SRTP_AEAD_AES_128_GCM, rtcdtlstransport.SRTP_AES128_CM_SHA1_80]
OPUS_PT = 111
AUDIO_LEVEL_ID = 1
TICK = 0.020
MAX_BURST = 5


def emit(event, **kv):
    sys.stdout.write(json.dumps({"event": event, **kv}) + "\n")
    sys.stdout.flush()


def fact(key, value):
    emit("fact", key=key, value=str(value))


class Speaker:
    """One speaker slot: an aiortc transceiver's SSRC, its script and what it sent."""

    def __init__(self, spec):
        self.endpoint = spec["endpoint"]
        self.ssrc = int(spec["ssrc"])
        self.windows = [(float(a), float(b)) for a, b in spec["windows"]]
        self.frames = [base64.b64decode(f) for f in spec["frames"]]
        self.levels = [int(v) for v in spec["levels"]]
        self.seq = random.randrange(0, 0x8000)
        self.ts_base = random.randrange(0, 1 << 32)
        self.active = True
        self.spurt = None  # (window index, start tick)
        self.sent = []

    def packet(self, k):
        """The RTP packet for tick k, or None outside the talk windows."""
        t = k * TICK + 1e-9
        w = next((i for i, (a, b) in enumerate(self.windows) if a <= t < b), None)
        if w is None or not self.active or not self.frames:
            self.spurt = None
            return None
        marker = self.spurt is None or self.spurt[0] != w
        if marker:
            self.spurt = (w, k)
        f = (k - self.spurt[1]) % len(self.frames)
        ts = (self.ts_base + k * 960) & 0xFFFFFFFF
        header = struct.pack(
            "!BBHII", 0x90, (0x80 if marker else 0) | OPUS_PT, self.seq, ts, self.ssrc
        )
        ext = struct.pack(
            "!HHBBBB", 0xBEDE, 1, AUDIO_LEVEL_ID << 4, 0x80 | (self.levels[f] & 0x7F), 0, 0
        )
        seq = self.seq
        self.seq = (self.seq + 1) & 0xFFFF
        return w, seq, header + ext + self.frames[f]

    def record(self, w, seq):
        now = time.time()
        if self.sent and self.sent[-1]["window"] == w:
            last = self.sent[-1]
            last.update(last_unix=now, last_seq=seq, packets=last["packets"] + 1)
            return
        a, b = self.windows[w]
        self.sent.append(
            dict(window=w, start=a, end=b, first_unix=now, last_unix=now,
                 first_seq=seq, last_seq=seq, packets=1)
        )

    def log(self):
        return dict(endpoint=self.endpoint, ssrc=self.ssrc, windows=self.sent)


class Bridge:
    def __init__(self):
        self.pc = None
        self.free = []  # senders of unused transceivers
        self.speakers = []
        self.mids = []
        self.sender_task = None
        self.skipped = 0

    def dtls(self):
        return self.pc.getTransceivers()[0].sender.transport

    async def allocate(self, msg):
        cfg = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        self.pc = RTCPeerConnection(cfg)
        slots = max(int(msg.get("max_speakers", 0)), len(msg["speakers"]), 1)
        for _ in range(slots):
            self.pc.addTransceiver("audio", direction="sendonly")
        self.free = [t.sender for t in self.pc.getTransceivers()]
        for spec in msg["speakers"]:
            self.add(spec)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.dtls()._srtp_profiles = JVB_PROFILES
        transport = offer_transport(self.pc.localDescription.sdp)
        self.mids = transport.pop("mids")
        self.opus_pt = transport.pop("opus_pt")
        emit("offer", **transport)

    def add(self, spec):
        """A speaker takes the next transceiver; its RTCP then carries the signalled SSRC."""
        if not self.free:
            raise RuntimeError("no free speaker slot")
        s = Speaker(spec)
        self.free.pop(0)._ssrc = s.ssrc
        self.speakers.append(s)

    async def accept(self, msg):
        fp = msg["fingerprint"]
        if fp.get("setup") != "active" or fp.get("hash", "").lower() != "sha-256":
            raise RuntimeError(f"jitape must answer setup=active with sha-256: {fp}")
        connected = asyncio.get_running_loop().create_future()

        @self.pc.on("connectionstatechange")
        def on_state():
            state = self.pc.connectionState
            if state == "connected" and not connected.done():
                connected.set_result(True)
            elif state == "failed" and not connected.done():
                connected.set_result(False)

        answer = answer_sdp(msg, fp, self.mids, self.opus_pt)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        asyncio.ensure_future(self.report_connection(connected))

    async def report_connection(self, connected):
        if not await connected:
            emit("error", message="aiortc: the connection failed")
            return
        dtls = self.dtls()
        ssl = dtls._ssl
        fact("ice_role", dtls.transport.role)
        fact("dtls_role", dtls._role)
        fact("dtls_version", ssl.get_protocol_version_name())
        fact("cipher_suite", ssl.get_cipher_name())
        fact("srtp_profile", ssl.get_selected_srtp_profile().decode())
        emit("connected")

    def start(self, msg):
        epoch_mono = time.monotonic() - (time.time() - float(msg["epoch_unix"]))
        self.sender_task = asyncio.ensure_future(self.send_loop(epoch_mono))

    async def send_loop(self, epoch_mono):
        k = 0
        dtls = self.dtls()
        while True:
            due = epoch_mono + (k + 1) * TICK
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            behind = int(-wait / TICK)
            if behind > MAX_BURST:
                self.skipped += behind - MAX_BURST
                k += behind - MAX_BURST
            for s in self.speakers:
                p = s.packet(k)
                if p is None:
                    continue
                w, seq, data = p
                try:
                    await dtls._send_rtp(data)
                    s.record(w, seq)
                except ConnectionError as e:
                    emit("log", message=f"sending failed: {e}")
            k += 1

    async def close(self):
        if self.sender_task:
            self.sender_task.cancel()
        reports = 0
        if self.pc is not None:
            for t in self.pc.getTransceivers():
                stats = await t.sender.getStats()
                reports += sum(1 for v in stats.values() if v.type == "remote-inbound-rtp")
        fact("senders_with_receiver_reports_from_jitape", reports)
        sent = dict(speakers=[s.log() for s in self.speakers], skipped_ticks=self.skipped)
        emit("closed", sent=sent)
        if self.pc is not None:
            await self.pc.close()


def offer_transport(sdp):
    """What Jicofo would signal for this offer: ICE, DTLS fingerprint, host candidates."""
    out = dict(candidates=[], mids=[])
    for line in sdp.splitlines():
        key, _, value = line.partition(":")
        if key == "a=ice-ufrag" and "ufrag" not in out:
            out["ufrag"] = value
        elif key == "a=ice-pwd" and "pwd" not in out:
            out["pwd"] = value
        elif key == "a=fingerprint" and value.startswith("sha-256 ") and "fingerprint" not in out:
            out["fingerprint"] = dict(hash="sha-256", value=value.split(" ", 1)[1])
        elif key == "a=mid":
            out["mids"].append(value)
        elif key == "a=rtpmap" and value.lower().split(" ", 1)[1].startswith("opus/"):
            out.setdefault("opus_pt", int(value.split(" ", 1)[0]))
        elif key == "a=candidate":
            f = value.split()
            cand = dict(foundation=f[0], component=int(f[1]), priority=int(f[3]), ip=f[4],
                        port=int(f[5]))
            if f[2].lower() == "udp" and f[7] == "host" and cand["component"] == 1:
                if cand not in out["candidates"]:
                    out["candidates"].append(cand)
    return out


def answer_sdp(msg, fp, mids, opus_pt):
    """The SDP answer aiortc needs, from jitape's transport (what Jicofo forwards)."""
    lines = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0",
             "a=group:BUNDLE " + " ".join(mids)]
    for i, mid in enumerate(mids):
        lines += [
            f"m=audio 9 UDP/TLS/RTP/SAVPF {opus_pt}",
            "c=IN IP4 0.0.0.0",
            f"a=mid:{mid}",
            "a=recvonly",
            "a=rtcp-mux",
            f"a=ice-ufrag:{msg['ufrag']}",
            f"a=ice-pwd:{msg['pwd']}",
            f"a=fingerprint:{fp['hash']} {fp['value']}",
            "a=setup:active",
            f"a=rtpmap:{opus_pt} opus/48000/2",
        ]
        if i == 0:
            for c in msg["candidates"]:
                lines.append(
                    f"a=candidate:{c['foundation']} 1 udp {c['priority']} {c['ip']} "
                    f"{c['port']} typ host"
                )
            lines.append("a=end-of-candidates")
    return "\r\n".join(lines) + "\r\n"


async def main():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    bridge = Bridge()
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            if not line.strip():
                continue
            msg = json.loads(line)
            op = msg.get("op")
            if op == "allocate":
                await bridge.allocate(msg)
            elif op == "accept":
                await bridge.accept(msg)
            elif op == "start":
                bridge.start(msg)
            elif op == "add":
                bridge.add(msg["speaker"])
            elif op == "remove":
                for s in bridge.speakers:
                    if s.endpoint == msg["endpoint"]:
                        s.active = False
            elif op == "close":
                break
    except Exception as e:  # reported to the test, which fails on it
        emit("error", message=f"{type(e).__name__}: {e}")
    await bridge.close()


if __name__ == "__main__":
    asyncio.run(main())
