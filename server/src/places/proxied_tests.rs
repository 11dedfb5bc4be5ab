//! Places of connections through a trusted load balancer.

#![allow(clippy::unwrap_used)]

use super::*;

fn places(per_source: usize, total: usize) -> Places {
    let limits = Limits {
        max_unauthenticated_per_ip: per_source,
        max_unauthenticated: total,
        max_connections: 8,
        ..Limits::default()
    };
    Places::new(&limits, 64)
}

const PROXY: [u8; 4] = [10, 0, 0, 5];

fn through(places: &Places, client: [u8; 4]) -> Option<(Admission, CancellationToken)> {
    let t = CancellationToken::new();
    let mut a = places.admit_proxied(PROXY.into(), t.clone())?;
    places.carried(&mut a, client.into()).then_some((a, t))
}

/// Through one balancer, each client has its own per-source budget.
#[tokio::test]
async fn each_carried_client_has_its_own_budget() {
    let places = places(2, 100);
    let mut held = Vec::new();
    for i in 0..30u8 {
        held.push(through(&places, [198, 51, 100, i]).expect("a place"));
    }
    held.push(through(&places, [203, 0, 113, 1]).unwrap());
    held.push(through(&places, [203, 0, 113, 1]).unwrap());
    assert!(through(&places, [203, 0, 113, 1]).is_none(), "per client");
    assert_eq!(
        places.strangers(),
        32,
        "the refused one gave its place back"
    );
}

/// Waiting for headers, a balancer's connections are bounded like a
/// source's, and they count in the server's total.
#[tokio::test]
async fn waiting_connections_count() {
    let places = places(3, 4);
    let t = CancellationToken::new();
    let _w: Vec<Admission> = (0..3)
        .map(|_| places.admit_proxied(PROXY.into(), t.clone()).unwrap())
        .collect();
    assert!(places.admit_proxied(PROXY.into(), t.clone()).is_none());
    assert_eq!(places.strangers(), 3);
    let _d = places.admit([192, 0, 2, 1].into(), t.clone()).unwrap();
    assert_eq!(places.strangers(), 4);
}

/// With the total taken, a carried client makes room by the rules of a
/// direct one: never by closing one of its own network, and the total
/// is back within its budget once every header is read.
#[tokio::test]
async fn a_full_server_makes_room_by_the_carried_address() {
    let places = places(16, 3);
    let mut direct = Vec::new();
    let tokens: Vec<CancellationToken> = (0..3).map(|_| CancellationToken::new()).collect();
    for (i, t) in tokens.iter().enumerate() {
        direct.push(
            places
                .admit([192, 0, 2, 1 + i as u8].into(), t.clone())
                .unwrap(),
        );
    }
    // Full: a client of the network holding all is refused...
    assert!(through(&places, [192, 0, 2, 99]).is_none());
    assert!(tokens.iter().all(|t| !t.is_cancelled()));
    assert_eq!(places.strangers(), 3);
    // ...one from elsewhere closes one of theirs.
    let (_a, _) = through(&places, [198, 51, 100, 1]).unwrap();
    assert_eq!(tokens.iter().filter(|t| t.is_cancelled()).count(), 1);
    assert_eq!(places.strangers(), 3);
    // The closed network, reconnecting through the balancer at once,
    // makes no room (cooldown), as when it connects directly.
    assert!(through(&places, [192, 0, 2, 50]).is_none());
    assert_eq!(places.strangers(), 3);
}

/// A LOCAL header (a health check) counts under the balancer itself.
#[tokio::test]
async fn local_counts_under_the_balancer() {
    let places = places(2, 10);
    let t = CancellationToken::new();
    let mut a = places.admit_proxied(PROXY.into(), t.clone()).unwrap();
    assert!(places.carried(&mut a, PROXY.into()));
    let mut b = places.admit_proxied(PROXY.into(), t.clone()).unwrap();
    assert!(places.carried(&mut b, PROXY.into()));
    // Those and the ones waiting for their header share its budget.
    assert!(places.admit_proxied(PROXY.into(), t.clone()).is_none());
    drop(b);
    let mut c = places.admit_proxied(PROXY.into(), t.clone()).unwrap();
    assert!(places.carried(&mut c, [192, 0, 2, 1].into()));
    drop((a, c));
    assert_eq!(places.strangers(), 0);
}
