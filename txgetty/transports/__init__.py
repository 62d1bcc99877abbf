"""
The transports sessions run on, and the strings that name them:

  - L{endpoints <txgetty.transports.endpoints>}: endpoint descriptions
    (C{tcp:}, C{unix:}, C{tls:}, C{udp:}, C{ws://}, C{wss://}) to Twisted
    endpoints, for servers and clients;
  - L{tls <txgetty.transports.tls>}: TLS settings, contexts and the words
    for a failed handshake;
  - L{udp <txgetty.transports.udp>}: a session per UDP peer;
  - L{websocket <txgetty.transports.websocket>} and L{wsstage
    <txgetty.transports.wsstage>}: a session per WebSocket, and the HTTP
    stage of a connection before its upgrade;
  - L{addresses <txgetty.transports.addresses>}, L{sockets
    <txgetty.transports.sockets>}: addresses as text, port numbers, what
    lies under a transport.

Nothing here imports the session, server or client packages: a transport
reaches the server that made it and the session it feeds only through the
objects it was given.
"""
