"""`mprt serve`: the live webcam app in a browser over WebRTC.

One loaded model (`shared.SharedModel`) serves several sessions. A `session.Session` owns one
browser's stream: its camera inbox (newest frame only), face tracking -> FLAME -> guidance maps
(`session_source`), a `StreamRuntime` run on its own thread, its output slot and its latency book.
It knows nothing about WebRTC: `rtc` bridges aiortc tracks and the data channel to it, `app` is the
aiohttp server (page, signalling, uploads, /stats, access rules), `sessions` admits, times out and
frees sessions. Glass-to-glass latency is measured with a frame code drawn into the pixels
(`framecode`): the page stamps every camera frame, the server copies the code onto the output
frame made from it, the page reads it back when the output frame is displayed.
"""
