//! Group commit: one thread owns the signing key and appends every request's records.
//!
//! Requests queue their entries; the thread takes everything queued the moment the previous
//! append is durable and appends it as one batch (one claim, one checkpoint), then answers
//! each request with its indexes. A request is answered only once a published checkpoint
//! covers its records. The log's own protocol (claims, compare-and-swap) keeps several
//! servers on one store correct.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::mpsc;
use tftrail_core::checkpoint::SigningKey;
use tftrail_log::Log;

use tokio::sync::oneshot;

use crate::metrics::Metrics;

/// Where a request's records landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landed {
    /// The signed checkpoint that covers them (shared by every request of the commit).
    pub checkpoint: Arc<Vec<u8>>,
    /// Index of its first record.
    pub first: u64,
    /// How many.
    pub count: u64,
    /// Size of [`Landed::checkpoint`].
    pub size: u64,
}

struct Job {
    entries: Vec<Vec<u8>>,
    reply: Option<oneshot::Sender<Result<Landed, String>>>,
}

enum Msg {
    Job(Job),
    /// Append what came before, then end.
    Stop,
}

/// The handle requests use to append.
#[derive(Clone)]
pub struct Sequencer {
    tx: mpsc::Sender<Msg>,
}

/// Called with each checkpoint an append publishes (or finds published), on the sequencer's
/// thread: the witnesses' submission queue.
pub type OnPublish = Box<dyn Fn(Arc<Vec<u8>>) + Send>;

impl Sequencer {
    /// Starts the appending thread. It ends when every handle is dropped and the queue is
    /// empty; join the returned handle to wait for the last append.
    pub fn start(
        log: Arc<Log>,
        key: SigningKey,
        max_batch: usize,
        gather: Duration,
        metrics: Arc<Metrics>,
        on_publish: Option<OnPublish>,
    ) -> (Sequencer, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("tftrail-sequencer".into())
            .spawn(move || run(log, key, rx, max_batch, gather, metrics, on_publish))
            .expect("cannot start the sequencer thread");
        (Sequencer { tx }, handle)
    }

    /// Appends `entries` with the next group commit; answers once they are covered by a
    /// published checkpoint.
    pub async fn append(&self, entries: Vec<Vec<u8>>) -> Result<Landed, String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Job(Job {
                entries,
                reply: Some(reply),
            }))
            .map_err(|_| "the server is shutting down".to_string())?;
        rx.await
            .map_err(|_| "the append was abandoned".to_string())?
    }

    /// Appends `entries` with the next group commit without waiting (the server's own
    /// records: denied accesses, token changes). A failure is logged.
    pub fn append_detached(&self, entries: Vec<Vec<u8>>) {
        let _ = self.tx.send(Msg::Job(Job {
            entries,
            reply: None,
        }));
    }

    /// Asks the thread to append everything queued so far and end (join its handle to wait).
    /// Appends asked for later are answered with an error.
    pub fn stop(&self) {
        let _ = self.tx.send(Msg::Stop);
    }
}

/// The most entry bytes in one group commit: below the log's chunk size, so that a batch is
/// always one claim and its records' indexes are contiguous even with other writers on the
/// store (a multi-chunk append can interleave with theirs).
const MAX_BATCH_BYTES: usize = 24 << 20;

fn job_bytes(j: &Job) -> usize {
    j.entries.iter().map(|e| e.len() + 2).sum()
}

fn run(
    log: Arc<Log>,
    key: SigningKey,
    rx: mpsc::Receiver<Msg>,
    max_batch: usize,
    gather: Duration,
    metrics: Arc<Metrics>,
    on_publish: Option<OnPublish>,
) {
    let mut carry: Option<Job> = None;
    let mut stopping = false;
    let mut prev_total = 0usize;
    loop {
        let first = match carry.take() {
            Some(j) => j,
            None if stopping => return,
            None => match rx.recv() {
                Ok(Msg::Job(j)) => j,
                Ok(Msg::Stop) | Err(_) => return,
            },
        };
        let mut total = first.entries.len();
        let mut bytes = job_bytes(&first);
        let mut jobs = vec![first];
        // The requests answered by the last commit are on their way back: while fewer records
        // than that commit held are queued, wait for more (at most `gather`), so that they join
        // this commit instead of waiting for the next (a lone writer never waits: its batch is
        // as large as the last one).
        let deadline = Instant::now() + gather;
        while total < max_batch {
            let next = match rx.try_recv() {
                Ok(m) => Some(m),
                Err(mpsc::TryRecvError::Empty) if total < prev_total => {
                    let now = Instant::now();
                    match deadline.checked_duration_since(now) {
                        Some(left) if !left.is_zero() => rx.recv_timeout(left).ok(),
                        _ => None,
                    }
                }
                Err(_) => None,
            };
            match next {
                None => break,
                Some(Msg::Stop) => {
                    stopping = true;
                    break;
                }
                Some(Msg::Job(j))
                    if total + j.entries.len() > max_batch
                        || bytes + job_bytes(&j) > MAX_BATCH_BYTES =>
                {
                    carry = Some(j);
                    break;
                }
                Some(Msg::Job(j)) => {
                    total += j.entries.len();
                    bytes += job_bytes(&j);
                    jobs.push(j);
                }
            }
        }
        prev_total = total;
        let mut entries = Vec::with_capacity(total);
        let mut counts = Vec::with_capacity(jobs.len());
        let mut replies = Vec::with_capacity(jobs.len());
        for j in jobs {
            counts.push(j.entries.len() as u64);
            entries.extend(j.entries);
            replies.push(j.reply);
        }
        let started = Instant::now();
        let out = log.append(&key, entries, &[], &mut |_, _| {});
        let took = started.elapsed();
        match out {
            Ok(out) => {
                metrics.appended(total as u64, took);
                let checkpoint = Arc::new(out.checkpoint);
                // One submission to the witnesses per group commit.
                if let Some(f) = &on_publish {
                    f(checkpoint.clone());
                }
                let mut first = out.first;
                for (n, reply) in counts.into_iter().zip(replies) {
                    if let Some(r) = reply {
                        let _ = r.send(Ok(Landed {
                            checkpoint: checkpoint.clone(),
                            first,
                            count: n,
                            size: out.size,
                        }));
                    }
                    first += n;
                }
            }
            Err(e) => {
                metrics.append_failed();
                let msg = format!("cannot append to the log: {e}");
                eprintln!("tftrail serve: {msg}");
                for r in replies.into_iter().flatten() {
                    let _ = r.send(Err(msg.clone()));
                }
            }
        }
    }
}
