//! `[auth]`: login hardening (delays, bans, penalties, the user store's
//! checks).

use serde::Deserialize;

/// Login settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// PBKDF2 iterations for new passwords (at least 4096).
    pub iterations: u32,
    /// Delay after the first failed login from an address, in milliseconds;
    /// it doubles with each further failure.
    pub failure_delay_ms: u64,
    /// Longest delay after a failed login, in milliseconds.
    pub max_failure_delay_ms: u64,
    /// Failed logins from one address before it is banned.
    pub ban_after_failures: u32,
    /// Length of a ban, in seconds.
    pub ban_secs: u64,
    /// How often, in milliseconds, the running server looks for changes to
    /// the user store (`ferryd user ...`) and applies them to live
    /// sessions: a removed user or a changed password closes them, a new
    /// quota holds from the next upload.
    pub user_store_check_ms: u64,
    /// How often, in milliseconds, each node takes the bans other nodes
    /// wrote to the state store into its own table (accepting a
    /// connection checks that table, not the store).
    pub ban_sync_ms: u64,
    /// IPv6 sources are counted by network: the first this many bits of
    /// the address (a host usually holds a whole /64).
    pub ipv6_prefix_len: u8,
    /// Failed logins from all the addresses of one network (see the two
    /// prefix lengths below) after which the whole network is banned for
    /// `ban_secs`, so an attacker holding many addresses of one network
    /// gets no more guesses than this. Never below `ban_after_failures`
    /// (a smaller value counts as that); 0 turns it off.
    pub network_ban_after_failures: u32,
    /// The network of an IPv4 address for `network_ban_after_failures`:
    /// its first this many bits (a /24).
    pub ipv4_network_prefix_len: u8,
    /// The network of an IPv6 address for `network_ban_after_failures`:
    /// its first this many bits (a /48, what one site usually holds).
    pub ipv6_network_prefix_len: u8,
    /// Failed logins as one user, from any address, after which that
    /// user's logins from addresses it has not logged in from are spaced
    /// out.
    pub user_penalty_after: u32,
    /// Spacing between such logins, in milliseconds; it doubles with each
    /// further failure...
    pub user_delay_ms: u64,
    /// ...up to this much. Only an address with no failures against the
    /// user waits for a turn (until its login deadline); any other gets
    /// one only if it is free at once, and is refused as busy otherwise.
    pub max_user_delay_ms: u64,
    /// Failures from an address, or against a user, are forgotten after
    /// this many seconds without a new one.
    pub forget_after_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            iterations: 100_000,
            failure_delay_ms: 250,
            max_failure_delay_ms: 8_000,
            ban_after_failures: 10,
            ban_secs: 600,
            user_store_check_ms: 1000,
            ban_sync_ms: 1000,
            ipv6_prefix_len: 64,
            network_ban_after_failures: 40,
            ipv4_network_prefix_len: 24,
            ipv6_network_prefix_len: 48,
            user_penalty_after: 20,
            user_delay_ms: 1_000,
            max_user_delay_ms: 8_000,
            forget_after_secs: 3600,
        }
    }
}

impl AuthConfig {
    /// Checks login settings that would make the server misbehave.
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.iterations >= ferry_proto::scram::MIN_ITERATIONS,
            "auth.iterations must be at least {}",
            ferry_proto::scram::MIN_ITERATIONS
        );
        anyhow::ensure!(
            self.ban_after_failures > 0 && self.user_penalty_after > 0,
            "auth.ban_after_failures and auth.user_penalty_after must be positive"
        );
        anyhow::ensure!(
            self.forget_after_secs > 0,
            "auth.forget_after_secs must be positive"
        );
        anyhow::ensure!(
            self.ipv6_prefix_len <= 128,
            "auth.ipv6_prefix_len must be at most 128"
        );
        anyhow::ensure!(
            self.ipv4_network_prefix_len <= 32
                && self.ipv6_network_prefix_len <= self.ipv6_prefix_len,
            "auth.ipv4_network_prefix_len must be at most 32, and auth.ipv6_network_prefix_len at most auth.ipv6_prefix_len (a network holds its sources)"
        );
        anyhow::ensure!(
            self.user_store_check_ms > 0,
            "auth.user_store_check_ms must be positive"
        );
        anyhow::ensure!(self.ban_sync_ms > 0, "auth.ban_sync_ms must be positive");
        Ok(())
    }
}
