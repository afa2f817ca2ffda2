//! The MQTT port, reserved until the MQTT broker lands: it is bound (so it
//! appears in `ports.json` and nothing else takes it) and answers every
//! CONNECT with "server unavailable" in the client's own protocol version,
//! so a client gets a clear refusal rather than a hang.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Bytes read while looking for the protocol level of a CONNECT.
const CONNECT_PEEK_BYTES_MAX: usize = 64;

pub async fn serve(listener: TcpListener, mut stopped: watch::Receiver<bool>) {
    loop {
        let socket = tokio::select! {
            r = listener.accept() => match r { Ok((s, _)) => s, Err(_) => continue },
            _ = stopped.changed() => return,
        };
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), refuse(socket)).await;
        });
    }
}

async fn refuse(mut socket: TcpStream) -> std::io::Result<()> {
    let mut buf = [0u8; CONNECT_PEEK_BYTES_MAX];
    let mut len = 0;
    // Fixed header (type + 1..4 length bytes), then "\0\x04MQTT" and the level.
    while len < CONNECT_PEEK_BYTES_MAX {
        let n = socket.read(&mut buf[len..]).await?;
        if n == 0 {
            return Ok(());
        }
        len += n;
        if let Some(level) = protocol_level(&buf[..len]) {
            let reply: &[u8] = if level >= 5 {
                &[0x20, 0x03, 0x00, 0x88, 0x00]
            } else {
                &[0x20, 0x02, 0x00, 0x03]
            };
            socket.write_all(reply).await?;
            return socket.shutdown().await;
        }
    }
    Ok(())
}

fn protocol_level(buf: &[u8]) -> Option<u8> {
    if buf.first()? >> 4 != 1 {
        return Some(4);
    }
    let mut i = 1;
    while *buf.get(i)? & 0x80 != 0 {
        i += 1;
    }
    // Variable header: protocol name (2-byte length + name), then the level.
    let name_len = usize::from(*buf.get(i + 1)?) << 8 | usize::from(*buf.get(i + 2)?);
    buf.get(i + 3 + name_len).copied()
}
