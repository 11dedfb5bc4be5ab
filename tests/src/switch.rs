//! A TCP proxy on loopback with a switch, to put between ferryd and a
//! store: cut, it drops its live connections and closes new ones at once
//! (a store that is down); restored, it forwards again. It runs on a
//! thread and runtime of its own, so sync and async tests can use it.

use std::net::SocketAddr;

use tokio::sync::watch;

/// A running proxy (stopped on drop).
pub struct SwitchProxy {
    addr: SocketAddr,
    up: watch::Sender<bool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SwitchProxy {
    /// A proxy to `target`, forwarding.
    pub fn start(target: SocketAddr) -> SwitchProxy {
        SwitchProxy::with(target, true)
    }

    /// A proxy to `target`, cut from the start.
    pub fn start_cut(target: SocketAddr) -> SwitchProxy {
        SwitchProxy::with(target, false)
    }

    fn with(target: SocketAddr, up: bool) -> SwitchProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("proxy address");
        let (up, up_rx) = watch::channel(up);
        let (stop, stop_rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(serve(listener, target, up_rx, stop_rx));
        });
        SwitchProxy {
            addr,
            up,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, an endpoint URL through the proxy.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Drops every connection and closes new ones until [`restore`].
    ///
    /// [`restore`]: SwitchProxy::restore
    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    /// Forwards again.
    pub fn restore(&self) {
        self.up.send_replace(true);
    }
}

impl Drop for SwitchProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Closes a socket with a reset, as a host that went away.
fn reset(s: tokio::net::TcpStream) {
    let _ = s.set_zero_linger();
    drop(s);
}

async fn serve(
    listener: std::net::TcpListener,
    target: SocketAddr,
    up: watch::Receiver<bool>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut stop => return,
        };
        let Ok((mut down, _)) = accepted else {
            continue;
        };
        if !*up.borrow() {
            reset(down);
            continue;
        }
        let mut cut = up.clone();
        tokio::spawn(async move {
            let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await else {
                reset(down);
                return;
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut down, &mut upstream) => {}
                _ = cut.wait_for(|up| !*up) => {
                    reset(down);
                    reset(upstream);
                }
            }
        });
    }
}
