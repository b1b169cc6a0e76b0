//! Checks that a GroupInfo is exactly the one a group's current epoch has.
//!
//! A GroupInfo is what a device joining by external commit trusts: its group
//! context (group id, epoch, tree hash, transcript hash), its confirmation tag and
//! its `external_pub` key. The server keeps the one each accepted commit came
//! with, so it must be the committer's GroupInfo *of that commit*: the same
//! to-be-signed content the server's own public view of the group produces, signed
//! by the committer's leaf. OpenMLS keeps the GroupInfo's fields crate-private, so
//! the to-be-signed bytes are compared whole: they are, in RFC 9420's order, the
//! group context, the extensions, the confirmation tag and the signer's leaf index.
//!
//! What cannot be checked without the group's secrets is whether `external_pub` is
//! the key the epoch's secret derives; a member who lies there only stops external
//! joins, and its commit is signed, so it is known.

use crate::{
    CIPHERSUITE,
    error::{Error, Result},
};
use openmls::messages::group_info::VerifiableGroupInfo;
use openmls::prelude::{
    ExtensionType, LeafNodeIndex, MlsMessageBodyIn, MlsMessageIn, OpenMlsSignaturePublicKey, PublicGroup,
    SignatureScheme, Verifiable as _,
    tls_codec::{Deserialize as _, Serialize as _},
};
use openmls_rust_crypto::RustCrypto;

/// Decodes a GroupInfo `MLSMessage`.
pub(crate) fn parse(bytes: &[u8]) -> Result<VerifiableGroupInfo> {
    match MlsMessageIn::tls_deserialize_exact(bytes).map_err(Error::malformed("GroupInfo"))?.extract() {
        MlsMessageBodyIn::GroupInfo(group_info) if group_info.ciphersuite() == CIPHERSUITE => Ok(group_info),
        MlsMessageBodyIn::GroupInfo(_) => Err(Error::UnsupportedCiphersuite),
        _ => Err(Error::Malformed { what: "GroupInfo" }),
    }
}

/// Checks the extensions every Conclave GroupInfo carries: `external_pub` (for
/// external joins) and nothing else (the ratchet tree travels separately).
pub(crate) fn check_extensions(group_info: &VerifiableGroupInfo) -> Result<()> {
    let extensions = group_info.extensions();
    if extensions.external_pub().is_none() {
        return Err(Error::Refused { what: "GroupInfo", reason: "it has no external_pub extension" });
    }
    if extensions.iter().any(|e| e.extension_type() != ExtensionType::ExternalPub) {
        return Err(Error::Refused {
            what: "GroupInfo",
            reason: "it carries an extension Conclave does not use",
        });
    }
    Ok(())
}

/// Checks that `bytes` is the GroupInfo of `group`'s current epoch, signed by the
/// member at `signer`.
pub(crate) fn verify(
    crypto: &RustCrypto,
    bytes: &[u8],
    group: &PublicGroup,
    signer: LeafNodeIndex,
) -> Result<()> {
    let group_info = parse(bytes)?;
    check_extensions(&group_info)?;
    let encode = |value: &dyn Fn() -> Result<Vec<u8>, openmls::prelude::tls_codec::Error>| {
        value().map_err(Error::internal("encode GroupInfo"))
    };
    let mut expected = encode(&|| group.group_context().tls_serialize_detached())?;
    expected.extend(encode(&|| group_info.extensions().tls_serialize_detached())?);
    expected.extend(encode(&|| group.confirmation_tag().tls_serialize_detached())?);
    expected.extend(signer.u32().to_be_bytes());
    let signed = group_info.unsigned_payload().map_err(|_| Error::Malformed { what: "GroupInfo" })?;
    if signed != expected {
        return Err(Error::Mismatch { what: "GroupInfo" });
    }
    let leaf = group.leaf(signer).ok_or(Error::Mismatch { what: "GroupInfo signer" })?;
    let key =
        OpenMlsSignaturePublicKey::from_signature_key(leaf.signature_key().clone(), SignatureScheme::ED25519);
    group_info.verify_no_out(crypto, &key).map_err(Error::rejected("GroupInfo signature"))
}
