//! The everyday tools on the namespace of homes in object storage: a
//! mode changed on a row.

use ferry_proto::RemoteError;

use super::namespace::{find, NsError};
use super::Store;

impl Store {
    /// Sets the mode of `path`'s row (a file or a directory); `check`
    /// learns whether it is a directory first and may refuse (the inner
    /// error: nothing changed).
    pub async fn ns_chmod(
        &self,
        owner: &str,
        path: &str,
        mode: u32,
        check: impl FnOnce(bool) -> Result<(), RemoteError>,
    ) -> Result<Result<(), RemoteError>, NsError> {
        let mut tx = self.ns_tx(owner).await?;
        let Some(found) = find(&mut tx, owner, path).await? else {
            return Err(NsError::NotFound);
        };
        if let Err(e) = check(found.is_dir) {
            return Ok(Err(e));
        }
        sqlx::query("UPDATE entries SET mode = $3 WHERE owner = $1 AND path = $2")
            .bind(owner)
            .bind(path)
            .bind(i64::from(mode))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }
}
