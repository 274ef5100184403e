//! The staff report (`missive report --campaign NAME --html FILE`): one self-contained HTML
//! page for a head teacher or a secretary, and its "paper list" of the families not reached
//! (`--csv FILE`). DESIGN.md, "The staff report".
//!
//! - [`model`]: the view model, [`StaffReport`], in no language;
//! - [`load`]: fills it from the tables (MessageLog and Consent today; the named spots for the
//!   Campaigns and Inbox tables);
//! - [`reasons`]: why a family was not reached;
//! - [`words`]: every text of the page, in French and English, in one place;
//! - [`render`]: the page (askama template `cli/templates/staff_report.html`);
//! - [`paper_list`]: the CSV.

pub mod load;
pub mod model;
pub mod paper_list;
pub mod reasons;
pub mod render;
pub mod words;

pub use model::StaffReport;
pub use render::{render_html, RenderOptions};
pub use words::Lang;

#[cfg(test)]
pub(crate) mod fixtures;
