"""A live RTSP server for camera-sim, run by Debian's Python (GStreamer's bindings live there).

It re-serves an H.264 stream that arrives as RTP on a local UDP port (ffmpeg plays the
video file into it, looping, in real time). Because its source is live, every client
shares one stream and a late joiner starts at "now" instead of rewinding it.

Usage: /usr/bin/python3 rtsp_server.py --udp-port 5000 --port 8554 --path /stream
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--udp-port", type=int, required=True, help="where ffmpeg sends H.264 over RTP")
    parser.add_argument("--port", type=int, required=True, help="RTSP port to listen on")
    parser.add_argument("--path", default="/stream", help="mount point")
    parser.add_argument("--address", default="127.0.0.1")
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer.new()
    server.set_address(args.address)
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory.new()
    factory.set_launch(
        f"( udpsrc address=127.0.0.1 port={args.udp_port} buffer-size=4194304 "
        'caps="application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96" '
        "! rtpjitterbuffer latency=100 ! rtph264depay ! h264parse config-interval=-1 "
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"rtsp-server: cannot listen on {args.address}:{args.port}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    print(f"rtsp-server: rtsp://{args.address}:{args.port}{args.path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
