// The reference: a minimal relay on Node's `ws`, speaking just enough of the
// Aleatoria protocol for the load generator -- a room joined at connect time,
// room broadcast with the sender's echo, and direct relay by toUser. Figures
// of the daemon are reported as ratios to this.
//
//   node peers/ws-reference.js PORT
"use strict";
const { WebSocketServer } = require("ws");

const port = Number(process.argv[2] || 8086);
const users = new Map();
const rooms = new Map();
const server = new WebSocketServer({ port, host: "127.0.0.1", perMessageDeflate: false });

server.on("connection", (socket, request) => {
  const query = new URL(request.url, "http://x").searchParams;
  const user = query.get("userId");
  const room = query.get("room") || "Lobby";
  users.set(user, socket);
  if (!rooms.has(room)) rooms.set(room, new Set());
  rooms.get(room).add(socket);
  socket.on("message", (data) => {
    const message = JSON.parse(data);
    message.fromUser = user;
    message.createTime = new Date().toISOString();
    if (message.toUser) {
      const peer = users.get(message.toUser);
      if (peer) peer.send(JSON.stringify({ ...message, incoming: true }));
      if (message.type === "chat_message") socket.send(JSON.stringify({ ...message, incoming: false }));
    } else if (message.room && rooms.has(message.room)) {
      const others = JSON.stringify({ ...message, incoming: true });
      for (const member of rooms.get(message.room)) {
        if (member !== socket) member.send(others);
      }
      socket.send(JSON.stringify({ ...message, incoming: false }));
    }
  });
  socket.on("close", () => {
    users.delete(user);
    rooms.get(room).delete(socket);
  });
});
server.on("listening", () => console.log(`listening on ${port}`));
