//! Labelling: connected components, relabelling and size filtering, linking 2D segments
//! across z, seeded watershed, labelling in blocks for parallel workers ([`blocks`]), and the
//! threshold → label → size filter chain ([`postprocess`]).

pub mod blocks;
pub mod components;
pub mod postprocess;
pub mod relabel;
pub mod watershed;
