//! Bounded capture of a skill's stdout and stderr: everything the skill writes
//! is accepted (it never fails or traps for printing), the first N bytes are
//! kept for the result, and the rest is counted as truncated.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// How much a guest may write per `check-write`: past the capture bound the
/// bytes are dropped (and counted as truncated), never refused, so printing
/// too much never traps a skill.
const WRITE_BUDGET_BYTES: usize = 64 * 1024;

#[derive(Debug, Default)]
struct Buffer {
    bytes: Vec<u8>,
    limit: usize,
    truncated: bool,
}

/// A stdout/stderr sink for one invocation.
#[derive(Debug, Clone)]
pub struct Capture(Arc<Mutex<Buffer>>);

impl Capture {
    pub fn new(limit: usize) -> Capture {
        Capture(Arc::new(Mutex::new(Buffer {
            bytes: Vec::new(),
            limit,
            truncated: false,
        })))
    }

    fn push(&self, data: &[u8]) {
        let mut buf = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let room = buf.limit.saturating_sub(buf.bytes.len());
        let keep = data.len().min(room);
        buf.bytes.extend_from_slice(&data[..keep]);
        if keep < data.len() {
            buf.truncated = true;
        }
    }

    /// What was kept (lossy UTF-8) and whether anything was dropped.
    pub fn contents(&self) -> (String, bool) {
        let buf = self.0.lock().unwrap_or_else(|p| p.into_inner());
        (
            String::from_utf8_lossy(&buf.bytes).into_owned(),
            buf.truncated,
        )
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

#[wasmtime_wasi::async_trait]
impl OutputStream for Capture {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_BUDGET_BYTES)
    }
}
