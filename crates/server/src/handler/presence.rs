//! Who is online.

use super::Ctx;
use crate::error::RequestError;
use conclave_proto::{Reply, UserPresence};

/// Most users `users` lists (by name); a deployment past this needs paging.
const MAX_LISTED_USERS: i64 = 5000;

/// # `users`
///
/// Every account (not disabled) by name, and whether it has a device connected
/// now. Changes arrive as `presence` events.
pub(crate) async fn users(ctx: &Ctx<'_>) -> Result<Reply, RequestError> {
    let online = ctx.shared.fanout.online();
    let users = ctx.shared.store.usernames(MAX_LISTED_USERS).await?;
    Ok(Reply::Users {
        users: users
            .into_iter()
            .map(|(id, username)| UserPresence { online: online.contains(&id), username })
            .collect(),
    })
}
