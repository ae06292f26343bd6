//! Push wake-ups: a dedicated connection `LISTEN`s on [`CHANNEL`], every commit `NOTIFY`s it in
//! its transaction (delivered only if it commits), and a thread calls the subscribers' `wake`
//! for each notice. When the connection drops (the database restarted, the session was
//! terminated) the thread reconnects and wakes everyone once, since notices sent while it was
//! away are lost; the engine's polling stays the fallback throughout.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;

use crate::pool::Connector;

/// The notification channel.
pub const CHANNEL: &str = "keyplane_changes";

type Wake = Arc<dyn Fn() + Send + Sync>;

/// The listening thread; stopped when dropped.
pub(crate) struct Listener {
    wakes: Arc<Mutex<Vec<Wake>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Listener")
    }
}

fn wake_all(wakes: &Mutex<Vec<Wake>>) {
    let wakes: Vec<Wake> = wakes.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for wake in wakes {
        wake();
    }
}

impl Listener {
    pub fn start(connector: Connector) -> std::io::Result<Self> {
        let wakes: Arc<Mutex<Vec<Wake>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (w, s) = (wakes.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("keyplane-pg-listen".into())
            .spawn(move || run(&connector, &w, &s))?;
        Ok(Listener {
            wakes,
            stop,
            thread: Some(thread),
        })
    }

    pub fn add(&self, wake: Wake) {
        self.wakes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(wake);
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

const TICK: Duration = Duration::from_millis(200);

fn run(connector: &Connector, wakes: &Mutex<Vec<Wake>>, stop: &AtomicBool) {
    let mut first = true;
    while !stop.load(Ordering::SeqCst) {
        let mut client = match connector.connect() {
            Ok(client) => client,
            Err(_) => {
                std::thread::sleep(TICK * 2);
                continue;
            }
        };
        if client.batch_execute(&format!("LISTEN {CHANNEL}")).is_err() {
            continue;
        }
        if !first {
            // Whatever was committed while this connection was down sent no notice it got.
            wake_all(wakes);
        }
        first = false;
        loop {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let next = client.notifications().timeout_iter(TICK).next();
            match next {
                Ok(Some(_)) => wake_all(wakes),
                Ok(None) if client.is_closed() => break,
                Ok(None) => {}
                Err(_) => break,
            }
        }
    }
}
