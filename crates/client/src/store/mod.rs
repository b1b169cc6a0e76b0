//! The client's local stores, all in the client home with owner-only
//! permissions: decrypted history ([`History`]) and the device's identity on the
//! server ([`DeviceRecord`]). (MLS key material lives in the MLS store, see
//! [`crate::mls`].)

mod device;
mod history;

pub use device::DeviceRecord;
pub use history::{History, LocalRoom, StoredMessage};
