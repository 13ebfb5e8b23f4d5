//! Hands finished record batches to the Arrow writer, on the caller's thread or on a
//! writer thread of its own.
//!
//! Encoding a batch into Parquet pages and compressing them with zstd is about a third
//! of the work of a quantization run. On its own thread it overlaps with quantizing the
//! next window instead of stalling it, which is what lets a run with `num_threads >= 2`
//! scale on a 2-core board. The channel holds [`QUEUED_BATCHES`], so at most one more
//! batch than that exists at a time (one being written) and memory stays bounded.

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use arrow_array::RecordBatch;
use parquet::arrow::ArrowWriter;

use crate::error::{AdapterError, Result};

/// Batches waiting for the writer thread. More than one lets the quantizer hand over a
/// whole buffered tensor and go on with the next instead of waiting for zstd with the
/// encoding threads idle; each is at most `WriterLimits::batch_bytes` (budget / 32).
const QUEUED_BATCHES: usize = 3;

/// The Arrow writer of an ArrowQuant file.
pub(crate) type FileWriter = ArrowWriter<BufWriter<crate::container::atomic::Writeback>>;

/// Writes batches and flushes a row group once it holds `row_group_bytes`.
pub(crate) enum BatchWriter {
    /// On the caller's thread.
    Inline { writer: Box<FileWriter>, row_group_bytes: usize, path: PathBuf },
    /// On a writer thread.
    Threaded(WriterThread),
}

/// The writer thread; it gives the writer back when the channel closes.
pub(crate) struct WriterThread {
    tx: Option<SyncSender<RecordBatch>>,
    thread: Option<JoinHandle<Result<FileWriter>>>,
    path: PathBuf,
}

impl Drop for WriterThread {
    /// A writer dropped on an error path still waits for its thread, so no thread
    /// outlives the run that started it.
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.join();
        }
    }
}

impl WriterThread {
    /// Closes the channel, waits for the thread and returns its writer or its error.
    fn join(&mut self) -> Result<FileWriter> {
        drop(self.tx.take());
        let handle = self
            .thread
            .take()
            .ok_or_else(|| AdapterError::parquet(&self.path, "the writer thread already stopped"))?;
        match handle.join() {
            Ok(r) => r,
            Err(payload) => Err(AdapterError::parquet(
                &self.path,
                format!(
                    "the writer thread panicked: {}",
                    crate::container::parquet::reader::decode_guard::panic_message(payload.as_ref())
                ),
            )),
        }
    }
}

/// Writes one batch, then flushes the row group if it is full.
fn write_batch(w: &mut FileWriter, batch: &RecordBatch, row_group_bytes: usize, path: &Path) -> Result<()> {
    w.write(batch).map_err(|e| AdapterError::parquet(path, e))?;
    if w.in_progress_size() >= row_group_bytes {
        w.flush().map_err(|e| AdapterError::parquet(path, e))?;
    }
    Ok(())
}

impl BatchWriter {
    /// A writer for `path`; `threaded` moves the writing to a thread of its own.
    pub(crate) fn new(
        writer: FileWriter,
        row_group_bytes: usize,
        path: &Path,
        threaded: bool,
    ) -> Result<Self> {
        let path = path.to_path_buf();
        if !threaded {
            return Ok(BatchWriter::Inline { writer: Box::new(writer), row_group_bytes, path });
        }
        let (tx, rx) = sync_channel::<RecordBatch>(QUEUED_BATCHES);
        let thread_path = path.clone();
        let thread = std::thread::Builder::new()
            .name("arrowquant-writer".into())
            .spawn(move || {
                let mut w = writer;
                // On an error the receiver is dropped: the next send fails and the
                // caller collects this error from `finish` or `write`.
                for batch in rx {
                    write_batch(&mut w, &batch, row_group_bytes, &thread_path)?;
                }
                Ok(w)
            })
            .map_err(|e| AdapterError::io(&path, e))?;
        Ok(BatchWriter::Threaded(WriterThread { tx: Some(tx), thread: Some(thread), path }))
    }

    /// Writes `batch` (or queues it for the writer thread).
    ///
    /// # Errors
    /// The writer's error, on whichever thread it happened.
    pub(crate) fn write(&mut self, batch: RecordBatch) -> Result<()> {
        match self {
            BatchWriter::Inline { writer, row_group_bytes, path } => {
                write_batch(writer, &batch, *row_group_bytes, path)
            }
            BatchWriter::Threaded(t) => {
                if t.tx.as_ref().is_some_and(|tx| tx.send(batch).is_ok()) {
                    return Ok(());
                }
                // The writer thread stopped: its result says why.
                t.join().map(|_| ())
            }
        }
    }

    /// Waits for every queued batch to be written and returns the writer.
    ///
    /// # Errors
    /// The first error of the writer thread.
    pub(crate) fn finish(self) -> Result<FileWriter> {
        match self {
            BatchWriter::Inline { writer, .. } => Ok(*writer),
            BatchWriter::Threaded(mut t) => t.join(),
        }
    }
}
