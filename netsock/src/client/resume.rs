//! A client's recoverable session after its transport broke: dial again
//! with backoff and resume it (nothing lost), or, when the server no longer
//! has it, carry on with a new session and say what was lost.

use std::sync::{Arc, Weak};
use std::time::Instant;

use crate::client::reconnect::{is_retryable, Reconnected, SessionLoss};
use crate::client::{Dialed, Redialer};
use crate::conn::handler_table::call_caught;
use crate::conn::session::frames;
use crate::conn::Shared;
use crate::error::DisconnectReason;
use crate::events::Events;
use crate::sync::{lock, read};
use crate::wire::frame::{numbered_tag, LostReason, EVENT_TAG, PREFIX_LEN};

/// Dials until `old`'s session is resumed (then gives `old` back) or
/// replaced by a new connection (given), or the attempts run out, or the
/// socket is closed (then `None`, the socket ended).
pub(super) async fn resume<In: Events, Out: Events>(
    client: &Weak<Redialer<In, Out>>,
    old: &Arc<Shared<In>>,
    reason: DisconnectReason,
) -> Option<Arc<Shared<In>>> {
    old.tell_disconnect(&reason).await;
    let since = Instant::now();
    let mut attempt = 0;
    let mut last_error = String::new();
    loop {
        attempt += 1;
        let Some(link) = client.upgrade() else {
            old.expire(reason).await;
            return None;
        };
        let policy = match link.policy.clone() {
            Some(policy) if !lock(&link.state).closing => policy,
            Some(_) => return give_up(&link, old, DisconnectReason::ClosedLocally).await,
            None => return give_up(&link, old, reason).await,
        };
        if !policy.may_try(attempt) {
            let attempts = attempt - 1;
            let error = std::mem::take(&mut last_error);
            return give_up(
                &link,
                old,
                DisconnectReason::ReconnectFailed { attempts, error },
            )
            .await;
        }
        let delay = policy.delay(attempt);
        tracing::info!(attempt, ?delay, "resuming the session");
        let dialed = link.dial_after(delay, old, true).await;
        let (next, lost) = match dialed {
            // Woken by `close()`: the next turn ends the socket.
            None => continue,
            Some(Err(err)) => {
                tracing::info!(attempt, error = %err, "resume attempt failed");
                last_error = err.to_string();
                if !is_retryable(&err) {
                    let why = DisconnectReason::ReconnectFailed {
                        attempts: attempt,
                        error: last_error,
                    };
                    return give_up(&link, old, why).await;
                }
                continue;
            }
            Some(Ok(Dialed::Resumed)) => (old.clone(), None),
            Some(Ok(Dialed::New(next, lost))) => {
                let loss = replace(
                    &link,
                    old,
                    &next,
                    lost.unwrap_or(LostReason::Unknown),
                    &reason,
                )
                .await;
                (next, Some(loss))
            }
        };
        let event = Reconnected {
            attempts: attempt,
            offline: since.elapsed(),
            replayed: 0,
            reason,
            recovered: lost.is_none(),
            lost,
        };
        let hooks = read(&link.on_reconnect).clone();
        drop(link);
        for hook in hooks {
            if let Err(message) = call_caught(|r| hook(r), event.clone()).await {
                tracing::warn!(socket = %next.id, %message, "on_reconnect handler panicked");
            }
        }
        return Some(next);
    }
}

/// Ends the socket (and its detached session) for good.
async fn give_up<In: Events, Out: Events>(
    link: &Redialer<In, Out>,
    old: &Arc<Shared<In>>,
    why: DisconnectReason,
) -> Option<Arc<Shared<In>>> {
    old.expire(why.clone()).await;
    link.end(old, why);
    None
}

/// `old`'s session was not resumed: what never left it (events) goes on
/// `next`, the rest is lost, `old` ends (its calls in flight fail), and
/// `next` becomes the link's connection. Gives what was lost.
async fn replace<In: Events, Out: Events>(
    link: &Redialer<In, Out>,
    old: &Arc<Shared<In>>,
    next: &Arc<Shared<In>>,
    why: LostReason,
    reason: &DisconnectReason,
) -> SessionLoss {
    tracing::warn!(%why, "the session could not be resumed; continuing with a new one");
    let (session_sent, session_received, unconfirmed) = old
        .session
        .as_ref()
        .map_or((0, 0, 0), |s| (s.sent(), s.received(), s.unconfirmed()));
    let (sent, received) = match &why {
        LostReason::Expired { received, sent } => (
            session_sent.saturating_sub(*received),
            Some(sent.saturating_sub(session_received)),
        ),
        _ => (unconfirmed, None),
    };
    // Events that never left go out on the new connection, in order;
    // requests and replies that never left belong to the old session.
    let unsent = old.outbox.take_unsent();
    let mut dropped = 0;
    for frame in frames(&unsent) {
        match frame.get(PREFIX_LEN).copied() {
            Some(EVENT_TAG) if next.queue(frame).await.is_ok() => {}
            Some(tag) if numbered_tag(tag) => dropped += 1,
            _ => {}
        }
    }
    let calls_failed = old.calls.waiting();
    lock(&link.state).conn = next.clone();
    link.back.notify_waiters();
    old.expire(reason.clone()).await;
    SessionLoss {
        why,
        sent: sent + dropped,
        received,
        calls_failed,
    }
}
