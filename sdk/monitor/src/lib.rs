//! Kiln's guest SDK for monitor components: drift statistics over histograms.
//!
//! A monitor implements [`Monitor`] and names itself with [`export_monitor!`]; built by
//! `sdk/build-components`, the crate becomes a component of the `kiln:monitor/monitor` world,
//! which imports nothing. The runtime calls [`Monitor::analyze`] off the request path, once per
//! closed window, with a deadline and a memory limit.

/// Bindings generated from `sdk/wit/monitor/monitor.wit`; the only place the guest runs bindgen
/// for that package.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/monitor",
        world: "kiln:monitor/monitor",
        pub_export_macro: true,
        export_macro_name: "__export_monitor_world",
        default_bindings_module: "kiln_monitor_sdk::bindings",
    });
}

pub use bindings::kiln::monitor::types::{
    Feature, FeatureKind, FeatureReport, Role, Severity, Statistic,
};

/// A drift monitor.
pub trait Monitor {
    /// Judges every feature of one window against its reference. `config` is the deployment's
    /// monitor config string (empty when none is set).
    fn analyze(features: Vec<Feature>, config: &str) -> Result<Vec<FeatureReport>, String>;
}

/// Exports a [`Monitor`] implementation as the component's `kiln:monitor/monitor` interface.
#[macro_export]
macro_rules! export_monitor {
    ($monitor:ty) => {
        const _: () = {
            use $crate::bindings::exports::kiln::monitor::analyzer::Guest;

            struct KilnExport;

            impl Guest for KilnExport {
                fn analyze(
                    features: ::std::vec::Vec<$crate::Feature>,
                    config: ::std::string::String,
                ) -> ::std::result::Result<
                    ::std::vec::Vec<$crate::FeatureReport>,
                    ::std::string::String,
                > {
                    <$monitor as $crate::Monitor>::analyze(features, &config)
                }
            }

    $crate::bindings::__export_monitor_world!(KilnExport with_types_in $crate::bindings);
        };
    };
}
