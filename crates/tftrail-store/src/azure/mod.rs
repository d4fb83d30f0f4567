//! Azure Blob Storage: the WORM check (`worm`, re-exported from [`crate::worm`]). The data
//! path is the shared object_store backend in `object`, which needs nothing Azure-specific
//! beyond its builder.

pub(crate) mod worm;
