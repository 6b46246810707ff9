//! Kiln's guest SDK: write a scoring component in Rust without WIT boilerplate.
//!
//! A scorer implements [`Scorer`] and names itself with [`export_scorer!`]; the crate is built for
//! `wasm32` by `sdk/build-components`, which makes it a WebAssembly component of the
//! `kiln:scoring/scorer` world. The host (`kiln serve`) calls [`Scorer::load`] once per instance
//! and [`Scorer::predict`] for every request, after checking the request against
//! [`Scorer::metadata`].
//!
//! ```ignore
//! struct Echo;
//! impl kiln_sdk::Scorer for Echo {
//!     fn load(_config: &str) -> Result<Self, String> { Ok(Echo) }
//!     fn metadata(&self) -> Metadata {
//!         Metadata::new("echo")
//!             .input(TensorSpec::new("x", Datatype::Fp32, &[-1]))
//!             .output(TensorSpec::new("y", Datatype::Fp32, &[-1]))
//!     }
//!     fn predict(&self, inputs: Inputs) -> Result<Vec<Tensor>, PredictError> {
//!         let x = inputs.get("x")?;
//!         Ok(vec![Tensor::fp32("y", x.shape.clone(), x.as_f32()?.to_vec())])
//!     }
//! }
//! kiln_sdk::export_scorer!(Echo);
//! ```

pub mod nn;
mod tensor;

pub use tensor::Inputs;

/// Bindings generated from `sdk/wit/scoring.wit`; the only place the guest runs bindgen. The
/// world is `scorer-nn`: a component imports `wasi:nn` and `kiln:scoring/graphs` only when it
/// calls [`nn`] (unused imports are not linked), and then needs the `nn` grant.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "kiln:scoring/scorer-nn",
        pub_export_macro: true,
        export_macro_name: "__export_scorer_world",
        default_bindings_module: "kiln_sdk::bindings",
        generate_all,
    });
}

pub use bindings::kiln::scoring::types::{
    Datatype, ModelMetadata as Metadata, PredictError, Tensor, TensorData, TensorSpec,
};

/// A model served by Kiln.
pub trait Scorer: Sized + 'static {
    /// Loads the model from the image's artifacts (see [`artifacts`]) and the deployment's
    /// config string. Called once per instance; the instance then serves many requests.
    fn load(config: &str) -> Result<Self, String>;
    /// Names, datatypes and shapes of the inputs and outputs (-1 for a variable dimension).
    fn metadata(&self) -> Metadata;
    /// Scores one request.
    fn predict(&self, inputs: Inputs) -> Result<Vec<Tensor>, PredictError>;
}

/// Read-only access to the files of the image this scorer was deployed from.
pub mod artifacts {
    use crate::bindings::kiln::scoring::artifacts as raw;

    /// Relative paths of every artifact file.
    pub fn list() -> Vec<String> {
        raw::list_files()
    }

    /// The bytes of one artifact file.
    pub fn read(path: &str) -> Result<Vec<u8>, String> {
        raw::read_file(path)
    }

    /// One artifact file as UTF-8 text.
    pub fn read_to_string(path: &str) -> Result<String, String> {
        let bytes = read(path)?;
        String::from_utf8(bytes).map_err(|_| format!("artifact {path} is not UTF-8 text"))
    }
}

/// Log lines, tagged by the host with the deployment that wrote them.
pub mod log {
    use crate::bindings::kiln::scoring::logging::{Level, log};

    /// Logs at debug level.
    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }
    /// Logs at info level.
    pub fn info(message: &str) {
        log(Level::Info, message)
    }
    /// Logs at warn level.
    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }
    /// Logs at error level.
    pub fn error(message: &str) {
        log(Level::Error, message)
    }
}

/// Sends panic messages to the host's log, so a trapped request says why in the server log.
#[doc(hidden)]
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        log::error(&format!("scorer panicked: {info}"))
    }));
}

/// Exports a [`Scorer`] implementation as the component's `kiln:scoring/model` interface.
#[macro_export]
macro_rules! export_scorer {
    ($scorer:ty) => {
        const _: () = {
            use $crate::bindings::exports::kiln::scoring::model::Guest;

            ::std::thread_local! {
                static LOADED: ::std::cell::RefCell<::std::option::Option<$scorer>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }

            struct KilnExport;

            impl Guest for KilnExport {
                fn load(
                    config: ::std::string::String,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::log_panics();
                    let scorer = <$scorer as $crate::Scorer>::load(&config)?;
                    LOADED.with(|slot| *slot.borrow_mut() = ::std::option::Option::Some(scorer));
                    ::std::result::Result::Ok(())
                }

                fn metadata() -> $crate::Metadata {
                    LOADED.with(|slot| match slot.borrow().as_ref() {
                        ::std::option::Option::Some(scorer) => $crate::Scorer::metadata(scorer),
                        ::std::option::Option::None => ::std::panic!("metadata called before load"),
                    })
                }

                fn predict(
                    inputs: ::std::vec::Vec<$crate::Tensor>,
                ) -> ::std::result::Result<::std::vec::Vec<$crate::Tensor>, $crate::PredictError>
                {
                    LOADED.with(|slot| match slot.borrow().as_ref() {
                        ::std::option::Option::Some(scorer) => {
                            $crate::Scorer::predict(scorer, $crate::Inputs::new(inputs))
                        }
                        ::std::option::Option::None => ::std::result::Result::Err(
                            $crate::PredictError::Internal("predict called before load".into()),
                        ),
                    })
                }
            }

    $crate::bindings::__export_scorer_world!(KilnExport with_types_in $crate::bindings);
        };
    };
}
