//! The penalty table's rules, on one node.
use super::*;

/// A login of `user` from `ip` whose proof passes.
async fn log_in(p: &Penalties, ip: IpAddr, user: &str) {
    p.begin(ip, user).await.unwrap().succeeded().await.unwrap();
}

fn penalties() -> Penalties {
    Penalties::new(AuthConfig {
        failure_delay_ms: 100,
        max_failure_delay_ms: 350,
        ban_after_failures: 4,
        ban_secs: 60,
        ..AuthConfig::default()
    })
}

#[tokio::test]
async fn delays_grow_then_ban() {
    let p = penalties();
    let ip: IpAddr = [10, 0, 0, 1].into();
    let other: IpAddr = [10, 0, 0, 2].into();
    let p = &p;
    let fail = |ip| async move { p.begin(ip, "bob").await.unwrap().failed().await };
    assert_eq!(fail(ip).await, Duration::from_millis(100));
    assert_eq!(fail(ip).await, Duration::from_millis(200));
    assert_eq!(fail(ip).await, Duration::from_millis(350));
    assert!(p.check(ip).is_ok());
    fail(ip).await;
    assert_eq!(p.check(ip).unwrap_err().kind, ErrorKind::Banned);
    assert!(p.check(other).is_ok());
}

#[tokio::test]
async fn a_success_clears_only_its_own_users_failures() {
    let p = penalties();
    let ip: IpAddr = [10, 0, 0, 1].into();
    for _ in 0..3 {
        p.begin(ip, "bob").await.unwrap().failed().await;
    }
    log_in(&p, ip, "mallory").await;
    p.begin(ip, "bob").await.unwrap().failed().await;
    assert_eq!(p.check(ip).unwrap_err().kind, ErrorKind::Banned);

    let ip: IpAddr = [10, 0, 0, 2].into();
    for _ in 0..3 {
        p.begin(ip, "alice").await.unwrap().failed().await;
    }
    // Alice's own mistakes are hers to clear.
    log_in(&p, ip, "alice").await;
    p.begin(ip, "alice").await.unwrap().failed().await;
    assert!(p.check(ip).is_ok());
}

#[tokio::test]
async fn proofs_in_flight_count_and_abandoned_ones_do_not() {
    let p = penalties();
    let ip: IpAddr = [10, 0, 0, 1].into();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(p.begin(ip, "bob").await.unwrap());
    }
    assert_eq!(
        p.begin(ip, "bob").await.unwrap_err().kind,
        ErrorKind::TooBusy
    );
    drop(held);
    let a = p.begin(ip, "bob").await.unwrap();
    let b = p.begin(ip, "bob").await.unwrap();
    p.begin(ip, "x").await.unwrap().failed().await;
    p.begin(ip, "x").await.unwrap().failed().await;
    // Two failures and two in flight reach the threshold of four.
    assert_eq!(
        p.begin(ip, "bob").await.unwrap_err().kind,
        ErrorKind::TooBusy
    );
    a.failed().await;
    b.succeeded().await.unwrap();
    assert!(p.check(ip).is_ok());
}

#[tokio::test]
async fn an_ipv6_network_is_one_source() {
    let p = penalties();
    for i in 1..=4u16 {
        let ip = IpAddr::from([0x2001, 0xdb8, 0, 7, i, 0, 0, i]);
        p.begin(ip, "bob").await.unwrap().failed().await;
    }
    let same: IpAddr = "2001:db8:0:7::99".parse().unwrap();
    let next: IpAddr = "2001:db8:0:8::1".parse().unwrap();
    assert_eq!(p.check(same).unwrap_err().kind, ErrorKind::Banned);
    assert!(p.check(next).is_ok());
}

#[tokio::test]
async fn failures_from_many_sources_space_out_that_user_only() {
    let p = Penalties::new(AuthConfig {
        ban_after_failures: 100,
        user_penalty_after: 3,
        user_delay_ms: 60_000,
        max_user_delay_ms: 60_000,
        ..AuthConfig::default()
    });
    let home: IpAddr = [10, 0, 0, 1].into();
    log_in(&p, home, "bob").await;
    for i in 2..5u8 {
        p.begin([10, 0, 0, i].into(), "bob")
            .await
            .unwrap()
            .failed()
            .await;
    }
    let soon = Instant::now() + Duration::from_secs(5);
    let stranger: IpAddr = [10, 0, 0, 9].into();
    let refused = p.turn(stranger, "bob", soon).await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::TooBusy);
    p.turn(home, "bob", soon).await.unwrap();
    p.turn(stranger, "alice", soon).await.unwrap();
}

/// Polls a turn once: `Some(refusal)` if refused at once, `None` if
/// granted (now or later: the turn is booked either way).
async fn try_turn(p: &Penalties, ip: [u8; 4], deadline: Instant) -> Option<ErrorKind> {
    let turn = p.turn(ip.into(), "bob", deadline);
    match tokio::time::timeout(Duration::from_millis(1), turn).await {
        Ok(Err(e)) => Some(e.kind),
        Ok(Ok(_)) | Err(_) => None,
    }
}

#[tokio::test]
async fn repeated_tries_cannot_book_the_real_users_turn() {
    let p = Penalties::new(AuthConfig {
        ban_after_failures: 100,
        user_penalty_after: 3,
        user_delay_ms: 60_000,
        max_user_delay_ms: 60_000,
        ..AuthConfig::default()
    });
    for i in 2..5u8 {
        p.begin([10, 0, 0, i].into(), "bob")
            .await
            .unwrap()
            .failed()
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    // The attacker's sources have failed against bob: they may not
    // book the next turn ahead...
    for i in 2..5u8 {
        let refused = try_turn(&p, [10, 0, 0, i], deadline).await;
        assert_eq!(refused, Some(ErrorKind::TooBusy));
    }
    // ...so the real user, from a new address, gets it.
    assert_eq!(try_turn(&p, [10, 0, 9, 1], deadline).await, None);
    // Still one checked guess per delay: the turn after is past the
    // deadline, even for another new address.
    let refused = try_turn(&p, [10, 0, 9, 2], deadline).await;
    assert_eq!(refused, Some(ErrorKind::TooBusy));
}

#[tokio::test]
async fn tries_refused_a_turn_count_toward_the_ban() {
    let p = Penalties::new(AuthConfig {
        ban_after_failures: 5,
        user_penalty_after: 3,
        user_delay_ms: 60_000,
        max_user_delay_ms: 60_000,
        ..AuthConfig::default()
    });
    let ip: IpAddr = [10, 0, 0, 2].into();
    for _ in 0..3 {
        p.begin(ip, "bob").await.unwrap().failed().await;
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    for _ in 0..4 {
        try_turn(&p, [10, 0, 0, 2], deadline).await;
    }
    assert_eq!(p.check(ip).unwrap_err().kind, ErrorKind::Banned);
}

#[tokio::test]
async fn a_counted_turn_is_not_counted_twice() {
    let p = Penalties::new(AuthConfig {
        ban_after_failures: 100,
        user_penalty_after: 1,
        user_delay_ms: 1,
        max_user_delay_ms: 1,
        ..AuthConfig::default()
    });
    let ip: IpAddr = [10, 0, 0, 1].into();
    p.begin(ip, "bob").await.unwrap().failed().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let fresh: IpAddr = [10, 0, 0, 7].into();
    let turn = p.turn(fresh, "bob", deadline).await.unwrap();
    p.begin_after(fresh, "bob", turn)
        .await
        .unwrap()
        .failed()
        .await;
    let table = p.table();
    assert_eq!(table.sources[&Place::Source(fresh)].failures(), 1);
}

/// Bans at 4 failures per address and 6 per /24 (a /48 for IPv6).
fn networked(network_ban_after_failures: u32) -> Penalties {
    Penalties::new(AuthConfig {
        failure_delay_ms: 1,
        max_failure_delay_ms: 1,
        ban_after_failures: 4,
        network_ban_after_failures,
        ban_secs: 60,
        ..AuthConfig::default()
    })
}

async fn fail_from(p: &Penalties, ip: IpAddr) {
    p.begin(ip, "bob").await.unwrap().failed().await;
}

#[tokio::test]
async fn many_addresses_of_one_network_add_up_to_its_ban() {
    let p = networked(6);
    for i in 1..=3u8 {
        for _ in 0..2 {
            fail_from(&p, [10, 0, 0, i].into()).await;
        }
    }
    // No address reached its own ban; together they reached their
    // network's, which holds for every address in it, and no further.
    let fresh: IpAddr = [10, 0, 0, 99].into();
    assert_eq!(p.check(fresh).unwrap_err().kind, ErrorKind::Banned);
    let refused = p.begin(fresh, "mallory").await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Banned);
    let next: IpAddr = [10, 0, 1, 1].into();
    assert!(p.check(next).is_ok());
    log_in(&p, next, "bob").await;
}

#[tokio::test]
async fn an_ipv6_site_is_one_network() {
    let p = networked(6);
    // Six /64s of one /48, one failure each.
    for i in 1..=6u16 {
        fail_from(&p, IpAddr::from([0x2001, 0xdb8, 7, i, 0, 0, 0, 1])).await;
    }
    let other_64: IpAddr = "2001:db8:7:99::1".parse().unwrap();
    assert_eq!(p.check(other_64).unwrap_err().kind, ErrorKind::Banned);
    let other_48: IpAddr = "2001:db8:8::1".parse().unwrap();
    assert!(p.check(other_48).is_ok());
}

#[tokio::test]
async fn proofs_in_flight_across_a_network_count() {
    let p = networked(6);
    let mut held = Vec::new();
    for i in 1..=6u8 {
        held.push(p.begin([10, 0, 0, i].into(), "bob").await.unwrap());
    }
    // A seventh address of the network: refused unchecked.
    let refused = p.begin([10, 0, 0, 7].into(), "bob").await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::TooBusy);
    assert!(refused.to_string().contains("network"), "{refused}");
    // Another network is not held up.
    drop(p.begin([10, 0, 1, 7].into(), "bob").await.unwrap());
    // Passed proofs free their places; the network has no failures.
    for a in held {
        a.succeeded().await.unwrap();
    }
    drop(p.begin([10, 0, 0, 7].into(), "bob").await.unwrap());
}

#[tokio::test]
async fn a_network_ban_is_off_at_zero_and_never_below_an_addresss() {
    let p = networked(0);
    for i in 1..=3u8 {
        for _ in 0..3 {
            fail_from(&p, [10, 0, 0, i].into()).await;
        }
    }
    assert!(p.check([10, 0, 0, 99].into()).is_ok());
    // A threshold below an address's counts as an address's: one address
    // is banned as an address, its neighbours stay free.
    let p = networked(2);
    for _ in 0..3 {
        fail_from(&p, [10, 0, 0, 1].into()).await;
    }
    assert!(p.check([10, 0, 0, 1].into()).is_ok());
    assert!(p.check([10, 0, 0, 2].into()).is_ok());
}
