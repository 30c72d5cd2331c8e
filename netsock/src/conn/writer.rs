//! The writer task: takes every frame queued in the
//! [outbox](super::outbox) and writes them with one call, waiting for the
//! socket as needed, but not longer than the write timeout.

use std::sync::Arc;
use std::time::Duration;

use super::outbox::{Batch, Take};
use super::Shared;
use crate::error::DisconnectReason;
use crate::events::Events;
use crate::throttle::warn_throttled;
use crate::transport::WriteHalf;

pub(super) async fn write_loop<In: Events>(io: Arc<WriteHalf>, shared: Arc<Shared<In>>) {
    // See `Outbox::take`: a current-thread runtime runs tasks in wake order,
    // so its writer gathers the batch without yielding.
    let gather = matches!(
        tokio::runtime::Handle::current().runtime_flavor(),
        tokio::runtime::RuntimeFlavor::MultiThread
    );
    let mut closed = false;
    loop {
        let mut batch = match shared.outbox.take(gather).await {
            Take::Batch(batch) => batch,
            Take::Last(last) => {
                if let Some(frame) = last {
                    let _ = write_all(&io, &frame, &mut 0, shared.config.write_timeout).await;
                }
                break;
            }
            Take::Done => break,
        };
        tracing::trace!(frames = batch.frames, bytes = batch.buf.len(), "frames out");
        let Batch { buf, done, .. } = &mut batch;
        if let Err(reason) = write_all(&io, buf, done, shared.config.write_timeout).await {
            // Senders waiting for room learn at once that none will come.
            shared.outbox.finish(None);
            shared.stop(Some(reason));
            break;
        }
        shared.meter.add(|c| &c.frames_out, batch.frames as u64);
        shared.meter.add(|c| &c.bytes_out, batch.buf.len() as u64);
        closed = batch.closing;
        shared.outbox.written(batch);
        if closed {
            break;
        }
    }
    // Dropping the last handle on the socket shuts it down.
    shared.outbox.release();
    drop(io);
    if closed {
        // Our Close is out: the reader waits for the peer to hang up.
        shared.stop(None);
    }
}

/// Writes `buf` from `done` on, waiting for room in the socket as needed,
/// but no longer than `timeout` for any byte to go.
async fn write_all(
    io: &WriteHalf,
    buf: &[u8],
    done: &mut usize,
    timeout: Duration,
) -> Result<(), DisconnectReason> {
    loop {
        io.write_now(buf, done)
            .map_err(|err| DisconnectReason::from_io(&err))?;
        if *done == buf.len() {
            return Ok(());
        }
        // Boxed: kept out of the writer task's size, which every
        // connection pays for, idle or not.
        match Box::pin(tokio::time::timeout(timeout, io.writable())).await {
            Ok(ready) => ready.map_err(|err| DisconnectReason::from_io(&err))?,
            Err(_) => {
                warn_throttled!("write timeout", ?timeout, "the peer stopped reading");
                return Err(DisconnectReason::WriteTimeout { after: timeout });
            }
        }
    }
}
