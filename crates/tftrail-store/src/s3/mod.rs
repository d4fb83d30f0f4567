//! Amazon S3 (and S3-compatible services): the administrative client used for object
//! versions and bucket configuration. The data path is the shared object_store backend in
//! `object`; the WORM check is still in `worm` (to be moved here).

pub mod admin;
