//! The MQTT load: publishers and subscribers over plain TCP against any
//! MQTT broker (Sluice or a peer), built on Sluice's own codec. Every payload
//! carries its publisher, sequence number and send time, so each subscriber
//! counts loss and reordering and measures latency; a fast run that lost a
//! message is reported as failed. Runs are bounded by count and time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use sluice_mqtt::{
    Bytes, BytesMut, Connect, ConnectProperties, Packet, PacketId, PubAck, Publish, QoS, Subscribe,
    Subscription, Version, decode, encode,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Bytes of header every payload starts with: publisher, sequence, send time.
const STAMP_BYTES: usize = 24;

#[derive(Debug, Clone)]
pub struct Load {
    pub addr: SocketAddr,
    pub qos: QoS,
    pub payload_bytes: usize,
    pub publishers: usize,
    pub subscribers: usize,
    /// Messages per publisher.
    pub count: u64,
    /// QoS 1 publishes in flight per publisher (closed loop).
    pub inflight: usize,
    /// Open loop: messages per second per publisher, sent on schedule.
    pub rate_per_s: Option<u64>,
    pub time_limit: Duration,
}

struct Conn {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    inbox: BytesMut,
}

impl Conn {
    async fn open(addr: SocketAddr, client_id: &str) -> anyhow::Result<Conn> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let (rd, wr) = s.into_split();
        let mut c = Conn {
            rd,
            wr,
            inbox: BytesMut::with_capacity(64 * 1024),
        };
        c.send(&Packet::Connect(Connect {
            version: Version::V3_1_1,
            client_id: client_id.into(),
            clean_start: true,
            keep_alive_s: 60,
            username: None,
            password: None,
            will: None,
            properties: ConnectProperties::default(),
        }))
        .await?;
        match c.recv().await? {
            Some(Packet::ConnAck(a)) if !a.reason.is_error() => Ok(c),
            other => anyhow::bail!("connect refused: {other:?}"),
        }
    }

    async fn send(&mut self, p: &Packet) -> anyhow::Result<()> {
        let mut out = BytesMut::new();
        encode(p, Version::V3_1_1, sluice_mqtt::PACKET_BYTES_MAX, &mut out)?;
        self.wr.write_all(&out).await?;
        Ok(())
    }

    async fn recv(&mut self) -> anyhow::Result<Option<Packet>> {
        loop {
            if let Some(p) = decode(
                &mut self.inbox,
                Version::V3_1_1,
                sluice_mqtt::PACKET_BYTES_MAX,
            )? {
                return Ok(Some(p));
            }
            if self.rd.read_buf(&mut self.inbox).await? == 0 {
                return Ok(None);
            }
        }
    }
}

/// What one subscriber saw.
#[derive(Default)]
struct Seen {
    received: u64,
    reordered: u64,
    duplicates: u64,
    latencies_us: Vec<u32>,
}

pub async fn run(load: Load) -> anyhow::Result<serde_json::Value> {
    let started = Instant::now();
    let deadline = started + load.time_limit;
    let expected_per_sub = load.count * load.publishers as u64;
    let epoch = Instant::now();
    // Subscribers first, all on `bench/#`.
    let mut subs = Vec::new();
    for i in 0..load.subscribers {
        let mut c = Conn::open(load.addr, &format!("lg-sub-{i}")).await?;
        c.send(&Packet::Subscribe(Subscribe {
            packet_id: PacketId::new(1).expect("non-zero"),
            subscriptions: vec![Subscription::new("bench/#", load.qos)],
            properties: Default::default(),
        }))
        .await?;
        match c.recv().await? {
            Some(Packet::SubAck(_)) => {}
            other => anyhow::bail!("subscribe failed: {other:?}"),
        }
        subs.push(tokio::spawn(subscriber(
            c,
            expected_per_sub,
            deadline,
            epoch,
        )));
    }
    let published = Arc::new(AtomicU64::new(0));
    let pub_started = Instant::now();
    let mut pubs = Vec::new();
    for i in 0..load.publishers {
        let c = Conn::open(load.addr, &format!("lg-pub-{i}")).await?;
        let (id, load, published) = (i as u64, load.clone(), published.clone());
        pubs.push(match load.rate_per_s {
            Some(rate) => tokio::spawn(scheduled_publisher(
                c, id, load, rate, deadline, epoch, published,
            )),
            None => tokio::spawn(publisher(c, id, load, deadline, epoch, published)),
        });
    }
    for p in pubs {
        p.await??;
    }
    let publish_secs = pub_started.elapsed().as_secs_f64();
    let mut seen = Vec::new();
    for s in subs {
        seen.push(s.await??);
    }
    let deliver_secs = pub_started.elapsed().as_secs_f64();
    let received: u64 = seen.iter().map(|s| s.received).sum();
    let mut lat: Vec<u32> = seen
        .iter()
        .flat_map(|s| s.latencies_us.iter().copied())
        .collect();
    lat.sort_unstable();
    let pct = |p: f64| {
        if lat.is_empty() {
            0.0
        } else {
            f64::from(lat[((lat.len() - 1) as f64 * p) as usize]) / 1000.0
        }
    };
    let sent = published.load(Relaxed);
    Ok(serde_json::json!({
        "mode": "mqtt",
        "rate_per_s": load.rate_per_s,
        "qos": load.qos as u8,
        "payload_bytes": load.payload_bytes,
        "publishers": load.publishers,
        "subscribers": load.subscribers,
        "published": sent,
        "received": received,
        "expected": sent * load.subscribers as u64,
        "lost": (sent * load.subscribers as u64).saturating_sub(received),
        "reordered": seen.iter().map(|s| s.reordered).sum::<u64>(),
        "duplicates": seen.iter().map(|s| s.duplicates).sum::<u64>(),
        "publish_msgs_per_s": sent as f64 / publish_secs,
        "delivered_msgs_per_s": received as f64 / deliver_secs,
        "seconds": deliver_secs,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
        "loadgen_cpu_s": crate::own_cpu_seconds(),
        "timed_out": Instant::now() >= deadline,
    }))
}

/// Encodes a publisher's messages: each payload starts with the
/// publisher, the sequence number and the send time the subscriber measures
/// from; QoS 1 gets the next packet id.
struct Stamper {
    id: u64,
    topic: String,
    qos: QoS,
    payload: Vec<u8>,
    next_id: u16,
}

impl Stamper {
    fn new(id: u64, load: &Load) -> Self {
        Stamper {
            id,
            topic: format!("bench/p{id}"),
            qos: load.qos,
            payload: vec![0u8; load.payload_bytes.max(STAMP_BYTES)],
            next_id: 0,
        }
    }

    fn encode(&mut self, seq: u64, sent_us: u64, out: &mut BytesMut) -> anyhow::Result<()> {
        self.payload[0..8].copy_from_slice(&self.id.to_le_bytes());
        self.payload[8..16].copy_from_slice(&seq.to_le_bytes());
        self.payload[16..24].copy_from_slice(&sent_us.to_le_bytes());
        let packet_id = (self.qos != QoS::AtMostOnce).then(|| {
            self.next_id = self.next_id.wrapping_add(1).max(1);
            PacketId::new(self.next_id).expect("non-zero")
        });
        let p = Packet::Publish(Publish {
            dup: false,
            qos: self.qos,
            retain: false,
            topic: self.topic.clone(),
            packet_id,
            payload: Bytes::copy_from_slice(&self.payload),
            properties: Default::default(),
        });
        encode(&p, Version::V3_1_1, sluice_mqtt::PACKET_BYTES_MAX, out)?;
        Ok(())
    }
}

async fn publisher(
    mut c: Conn,
    id: u64,
    load: Load,
    deadline: Instant,
    epoch: Instant,
    published: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let mut stamp = Stamper::new(id, &load);
    let mut inflight = 0usize;
    let mut out = BytesMut::with_capacity(256 * 1024);
    let mut seq = 0u64;
    while seq < load.count && Instant::now() < deadline {
        // Fill the window (QoS 1) or a batch (QoS 0), then write once.
        while seq < load.count
            && (load.qos == QoS::AtMostOnce && out.len() < 64 * 1024
                || load.qos != QoS::AtMostOnce && inflight < load.inflight)
        {
            stamp.encode(seq, epoch.elapsed().as_micros() as u64, &mut out)?;
            seq += 1;
            if load.qos != QoS::AtMostOnce {
                inflight += 1;
            }
        }
        c.wr.write_all(&out).await?;
        out.clear();
        if load.qos != QoS::AtMostOnce {
            // Wait for at least one acknowledgement before sending more.
            loop {
                match tokio::time::timeout_at(deadline.into(), c.recv()).await {
                    Ok(Ok(Some(Packet::PubAck(_)))) => {
                        inflight -= 1;
                        if c.inbox.is_empty() {
                            break;
                        }
                    }
                    Ok(Ok(Some(_))) => {}
                    _ => return Ok(()),
                }
            }
        }
    }
    // Let the last acknowledgements arrive (QoS 1), then count what was sent.
    while inflight > 0 {
        match tokio::time::timeout_at(deadline.into(), c.recv()).await {
            Ok(Ok(Some(Packet::PubAck(_)))) => inflight -= 1,
            Ok(Ok(Some(_))) => {}
            _ => break,
        }
    }
    published.fetch_add(seq, Relaxed);
    c.send(&Packet::Disconnect(Default::default())).await?;
    Ok(())
}

/// The open-loop publisher: message `seq` is due at `start + seq / rate`
/// and carries that time, so a broker that stalls is charged for every
/// message that waited behind the stall, not just the first. Messages
/// already due go out in one write; acknowledgements are read on the side.
async fn scheduled_publisher(
    c: Conn,
    id: u64,
    load: Load,
    rate: u64,
    deadline: Instant,
    epoch: Instant,
    published: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let Conn { rd, mut wr, inbox } = c;
    let acked = Arc::new(AtomicU64::new(0));
    let reader = tokio::spawn(count_acks(rd, inbox, acked.clone()));
    let mut stamp = Stamper::new(id, &load);
    let interval = Duration::from_secs(1).as_nanos() as u64 / rate;
    let start = Instant::now();
    let due = |seq: u64| start + Duration::from_nanos(seq * interval);
    let mut out = BytesMut::with_capacity(64 * 1024);
    let mut seq = 0u64;
    while seq < load.count && due(seq) < deadline {
        tokio::time::sleep_until(due(seq).into()).await;
        let now = Instant::now();
        while seq < load.count && due(seq) <= now && out.len() < 64 * 1024 {
            let sent_us = due(seq).duration_since(epoch).as_micros() as u64;
            stamp.encode(seq, sent_us, &mut out)?;
            seq += 1;
        }
        wr.write_all(&out).await?;
        out.clear();
    }
    if load.qos != QoS::AtMostOnce {
        while acked.load(Relaxed) < seq && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    reader.abort();
    published.fetch_add(seq, Relaxed);
    let mut bye = BytesMut::new();
    encode(
        &Packet::Disconnect(Default::default()),
        Version::V3_1_1,
        sluice_mqtt::PACKET_BYTES_MAX,
        &mut bye,
    )?;
    wr.write_all(&bye).await?;
    Ok(())
}

/// Counts PUBACKs on a publisher's read half until the socket closes.
async fn count_acks(mut rd: OwnedReadHalf, mut inbox: BytesMut, acked: Arc<AtomicU64>) {
    loop {
        loop {
            match decode(&mut inbox, Version::V3_1_1, sluice_mqtt::PACKET_BYTES_MAX) {
                Ok(Some(Packet::PubAck(_))) => {
                    acked.fetch_add(1, Relaxed);
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        if !matches!(rd.read_buf(&mut inbox).await, Ok(n) if n > 0) {
            return;
        }
    }
}

async fn subscriber(
    mut c: Conn,
    expected: u64,
    deadline: Instant,
    epoch: Instant,
) -> anyhow::Result<Seen> {
    let mut seen = Seen::default();
    let mut last: HashMap<u64, u64> = HashMap::new();
    while seen.received < expected {
        let p = match tokio::time::timeout_at(deadline.into(), c.recv()).await {
            Ok(Ok(Some(p))) => p,
            _ => break,
        };
        let Packet::Publish(p) = p else { continue };
        if p.qos == QoS::AtLeastOnce {
            c.send(&Packet::PubAck(PubAck::new(
                p.packet_id.expect("QoS 1 has an id"),
            )))
            .await?;
        }
        if p.payload.len() < STAMP_BYTES {
            continue;
        }
        let word = |i: usize| u64::from_le_bytes(p.payload[i..i + 8].try_into().expect("8 bytes"));
        let (publisher, seq, sent_us) = (word(0), word(8), word(16));
        match last.get(&publisher) {
            Some(&prev) if seq == prev => seen.duplicates += 1,
            Some(&prev) if seq < prev => seen.reordered += 1,
            _ => {}
        }
        last.insert(publisher, seq);
        seen.received += 1;
        let now_us = epoch.elapsed().as_micros() as u64;
        seen.latencies_us
            .push(now_us.saturating_sub(sent_us).min(u64::from(u32::MAX)) as u32);
    }
    Ok(seen)
}

/// Opens `connections` idle MQTT connections and holds them for `hold`,
/// so the broker's memory per idle connection can be read from outside.
pub async fn idle(
    addr: SocketAddr,
    connections: usize,
    hold: Duration,
) -> anyhow::Result<serde_json::Value> {
    let started = Instant::now();
    let mut held = Vec::with_capacity(connections);
    let mut failed = 0u64;
    for i in 0..connections {
        match Conn::open(addr, &format!("idle-{i}")).await {
            Ok(c) => held.push(c),
            Err(_) => failed += 1,
        }
    }
    let connected = held.len();
    println!(
        "{}",
        serde_json::json!({"mode": "idle", "connected": connected, "failed": failed, "connect_seconds": started.elapsed().as_secs_f64()})
    );
    tokio::time::sleep(hold).await;
    drop(held);
    Ok(serde_json::json!({"mode": "idle-done", "connected": connected}))
}
