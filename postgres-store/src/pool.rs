//! A small bounded pool of connections to the database. A connection that failed is dropped,
//! not returned; a new one is made on demand, each within the connect timeout, with the
//! statement timeout set on it, so that no store call waits on the database for longer than
//! those bounds (and the pool's wait for a free connection).

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use keyplane::{Error, Result};
use postgres::{Client, NoTls};

use crate::address::PgAddress;
use crate::errors;
use crate::tls::RustlsConnect;

/// How long a store call may wait on the database.
#[derive(Clone, Debug)]
pub struct Timeouts {
    /// To open a connection.
    pub connect: Duration,
    /// For one statement (`statement_timeout`, and `lock_timeout`).
    pub statement: Duration,
    /// For each statement of a cold load, which reads every key, every alias and every copy of
    /// key material in one statement each: a million keys take longer than an ordinary
    /// statement is allowed (about 27 s to a working engine on the development machine).
    pub load: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            statement: Duration::from_secs(10),
            load: Duration::from_secs(600),
        }
    }
}

/// What opens a connection: the address and its TLS settings.
#[derive(Clone, Debug)]
pub(crate) struct Connector {
    pub address: PgAddress,
    pub tls: Option<RustlsConnect>,
    pub timeouts: Timeouts,
}

impl Connector {
    pub fn new(address: PgAddress, timeouts: Timeouts) -> Result<Self> {
        let tls = RustlsConnect::for_address(&address)?;
        Ok(Connector {
            address,
            tls,
            timeouts,
        })
    }

    /// A new connection, with the session's timeouts set.
    pub fn connect(&self) -> Result<Client> {
        let mut config = self.address.config.clone();
        config.connect_timeout(self.timeouts.connect);
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(10));
        config.application_name("keyplane");
        let shown = self.address.display();
        let connected = match &self.tls {
            Some(tls) => config.connect(tls.clone()),
            None => config.connect(NoTls),
        };
        let mut client = connected.map_err(|e| errors::pg("connect", shown, e))?;
        let ms = self.timeouts.statement.as_millis();
        client
            .batch_execute(&format!(
                "SET statement_timeout = {ms}; SET lock_timeout = {ms}; \
                 SET idle_in_transaction_session_timeout = {}",
                ms.saturating_mul(3)
            ))
            .map_err(|e| errors::pg("set the session's timeouts", shown, e))?;
        Ok(client)
    }
}

/// The pool.
#[derive(Debug)]
pub(crate) struct Pool {
    pub connector: Connector,
    state: Mutex<PoolState>,
    freed: Condvar,
    max: usize,
}

struct PoolState {
    idle: Vec<Client>,
    open: usize,
}

impl std::fmt::Debug for PoolState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} open, {} idle", self.open, self.idle.len())
    }
}

/// A connection taken from the pool; back to it when dropped, unless it failed.
pub(crate) struct Pooled<'a> {
    pool: &'a Pool,
    client: Option<Client>,
}

impl Pooled<'_> {
    pub fn client(&mut self) -> &mut Client {
        self.client
            .as_mut()
            .expect("a pooled connection is held until drop")
    }

    /// Drops the connection instead of returning it (after an error whose aftermath is unclear).
    pub fn discard(mut self) {
        self.client = None;
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let mut state = self.pool.lock();
        match self.client.take() {
            Some(client) if !client.is_closed() => state.idle.push(client),
            _ => state.open -= 1,
        }
        self.pool.freed.notify_one();
    }
}

impl Pool {
    pub fn new(connector: Connector, max: usize) -> Self {
        Pool {
            connector,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
            max: max.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A live connection: an idle one, a new one while fewer than the pool's size are open, or
    /// the next one freed within the connect timeout.
    pub fn get(&self) -> Result<Pooled<'_>> {
        let deadline = Instant::now() + self.connector.timeouts.connect;
        let mut state = self.lock();
        loop {
            while let Some(client) = state.idle.pop() {
                if client.is_closed() {
                    state.open -= 1;
                    continue;
                }
                return Ok(Pooled {
                    pool: self,
                    client: Some(client),
                });
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match self.connector.connect() {
                    Ok(client) => Ok(Pooled {
                        pool: self,
                        client: Some(client),
                    }),
                    Err(e) => {
                        self.lock().open -= 1;
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::StoreUnreachable(format!(
                    "all {} connections to the key store {} stayed busy for {:?}",
                    self.max,
                    self.connector.address.display(),
                    self.connector.timeouts.connect
                )));
            }
            state = self
                .freed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}
