//! Amazon S3 (and S3-compatible services): the administrative client used for object
//! versions and bucket configuration ([`admin`]) and the WORM check (`worm`, re-exported from
//! [`crate::worm`]). The data path is the shared object_store backend in `object`.

pub mod admin;
pub(crate) mod worm;
