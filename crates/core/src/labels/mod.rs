//! Labelling: connected components, relabelling and size filtering, linking 2D segments
//! across z, and seeded watershed.

pub mod components;
pub mod relabel;
pub mod watershed;
