// The old system's shape of POST /ingest, as a peer for ingest_bench.py (written for the benchmark,
// not taken from the old code): Express 4 + pg, a shared-token header check, a JSON body, one
// `INSERT ... ON CONFLICT DO NOTHING` per request into a table shaped like forwarded_messages.
// Run by the bench: `node express_peer.js` with PORT, DATABASE_URL, TOKEN, TABLE, POOL_SIZE set.
"use strict";
const crypto = require("crypto");
const express = require("express");
const { Pool } = require("pg");

const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.POOL_SIZE || 8) });
const token = Buffer.from(process.env.TOKEN);
const table = process.env.TABLE || "express_peer.forwarded_messages";
const insert = `INSERT INTO ${table} (channel_id, message_id, original_timestamp, message_text, photos)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT (channel_id, message_id, original_timestamp) DO NOTHING`;

const app = express();
app.disable("x-powered-by");
app.use(express.json({ limit: "1mb" }));

app.post("/ingest", async (req, res) => {
  const supplied = Buffer.from(req.get("x-gateway-token") || "");
  if (supplied.length !== token.length || !crypto.timingSafeEqual(supplied, token)) {
    return res.status(401).json({ error: "Invalid gateway token" });
  }
  const { channelId, messageId, text, timestamp, photos } = req.body || {};
  if (channelId === undefined || messageId === undefined || !timestamp) {
    return res.status(400).json({ error: "Validation failed", details: ["channelId, messageId and timestamp are required"] });
  }
  try {
    const result = await pool.query(insert, [channelId, messageId, timestamp, text || "", JSON.stringify(photos || [])]);
    const stored = result.rowCount === 1;
    res.json({ success: true, status: stored ? "stored" : "duplicate", stored, messageId });
  } catch (err) {
    res.status(503).json({ error: "Database connection failed" });
  }
});

app.listen(Number(process.env.PORT), "127.0.0.1", () => console.log("express peer listening"));
