//! Access control: who is calling ([`Caller`]), whether they may ([`authorize`]), and how often
//! ([`quota`]).

pub mod action;
pub(crate) mod authorize;
pub mod caller;
pub mod conditions;
pub mod origin;
pub mod quota;
pub(crate) mod request_facts;

pub use action::Action;
pub use caller::Caller;
pub use origin::RequestOrigin;
pub use quota::{QuotaFamily, RateQuotas};
