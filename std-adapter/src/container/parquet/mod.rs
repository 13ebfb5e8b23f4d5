//! The ArrowQuant Parquet format (`docs/FORMAT.md`): the schema and keys, the writer
//! (with its writer thread) and the reader.

pub(crate) mod batch_writer;
pub(crate) mod reader;
pub(crate) mod schema;
pub(crate) mod writer;
