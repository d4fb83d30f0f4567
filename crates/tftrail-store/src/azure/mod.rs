//! Azure Blob Storage: the WORM check ([`worm`]). The data path is the shared object_store
//! backend in `object`.

pub(crate) mod worm;
