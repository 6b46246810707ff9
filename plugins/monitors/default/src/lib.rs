//! Kiln's default drift monitor, a `kiln:monitor` component.
//!
//! For each feature it compares the window's histogram `c` (total `C`) with the reference
//! histogram `r` (total `R`) over the same `k` bins, with `p = c / C` and `q = r / R`:
//!
//! | statistic | definition | features |
//! |---|---|---|
//! | `psi` | `Σ (p'ᵢ − q'ᵢ) ln(p'ᵢ / q'ᵢ)`, with `p' = max(p, 1e-4)`, `q' = max(q, 1e-4)` | all |
//! | `js_distance` | `√(½ KL(p‖m) + ½ KL(q‖m))`, `m = (p + q) / 2`, natural log (SciPy's `jensenshannon`) | all |
//! | `ks_statistic` | `maxⱼ |Σᵢ≤ⱼ pᵢ − Σᵢ≤ⱼ qᵢ|`: the two-sample KS statistic of the binned values | numeric |
//! | `ks_pvalue` | `Q_KS(√(RC / (R + C)) · D)`, the asymptotic Kolmogorov distribution (SciPy's `kstwobign.sf`) | numeric |
//! | `wasserstein` | Wasserstein-1 distance between `p` and `q` placed on bin midpoints (the open end bins close at the reference minimum and maximum), divided by the reference's standard deviation on the same points (not divided when that is 0) | numeric |
//! | `chi2_statistic` | `Σ (cᵢ − Eᵢ)² / Eᵢ` with `Eᵢ = C (rᵢ + ½) / (R + ½k)` (add-½ smoothing, so unseen reference categories are allowed) | categorical |
//! | `chi2_pvalue` | upper tail of χ² with `k − 1` degrees of freedom | categorical |
//! | `count` | `C` | all |
//!
//! Verdicts, with the thresholds of the config string (defaults in brackets):
//! - `insufficient-data` when `C < min_count` [50] or there is no reference;
//! - `alert` when `psi ≥ psi_alert` [0.25] and the feature's test rejects, `p < p_value` [0.05]
//!   (KS for numeric features, χ² for categorical ones);
//! - `warning` when `psi ≥ psi_warning` [0.1] and the test rejects, or `psi ≥ psi_alert` alone;
//! - `ok` otherwise.
//!
//! PSI alone over small windows is noisy (its expectation with no drift is about
//! `(k − 1)(1/R + 1/C)`), which is why an alert also needs the test.
//!
//! Config: `psi_warning=0.1,psi_alert=0.25,p_value=0.05,min_count=50` (any subset, separated by
//! commas or spaces).

use kiln_monitor_sdk::{Feature, FeatureKind, FeatureReport, Monitor, Severity, Statistic};

struct Default;

/// Thresholds of the verdicts.
struct Thresholds {
    psi_warning: f64,
    psi_alert: f64,
    p_value: f64,
    min_count: f64,
}

fn parse_config(config: &str) -> Result<Thresholds, String> {
    let mut t = Thresholds {
        psi_warning: 0.1,
        psi_alert: 0.25,
        p_value: 0.05,
        min_count: 50.0,
    };
    for item in config
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
    {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| format!("config item '{item}' is not key=value"))?;
        let slot = match key {
            "psi_warning" => &mut t.psi_warning,
            "psi_alert" => &mut t.psi_alert,
            "p_value" => &mut t.p_value,
            "min_count" => &mut t.min_count,
            _ => {
                return Err(format!(
                    "unknown config '{key}' (psi_warning, psi_alert, p_value, min_count)"
                ));
            }
        };
        *slot = value
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("config '{key}' needs a non-negative number, got '{value}'"))?;
    }
    Ok(t)
}

const PSI_FLOOR: f64 = 1e-4;

fn proportions(counts: &[u64]) -> (Vec<f64>, f64) {
    let total: f64 = counts.iter().map(|&c| c as f64).sum();
    let p = counts
        .iter()
        .map(|&c| if total > 0.0 { c as f64 / total } else { 0.0 })
        .collect();
    (p, total)
}

fn psi(p: &[f64], q: &[f64]) -> f64 {
    p.iter()
        .zip(q)
        .map(|(&p, &q)| {
            let (p, q) = (p.max(PSI_FLOOR), q.max(PSI_FLOOR));
            (p - q) * (p / q).ln()
        })
        .sum()
}

fn js_distance(p: &[f64], q: &[f64]) -> f64 {
    let kl = |a: &[f64], m: &[f64]| -> f64 {
        a.iter()
            .zip(m)
            .filter(|(a, _)| **a > 0.0)
            .map(|(&a, &m)| a * (a / m).ln())
            .sum()
    };
    let m: Vec<f64> = p.iter().zip(q).map(|(a, b)| (a + b) / 2.0).collect();
    ((kl(p, &m) + kl(q, &m)) / 2.0).max(0.0).sqrt()
}

fn ks_statistic(p: &[f64], q: &[f64]) -> f64 {
    let (mut cp, mut cq, mut d) = (0.0f64, 0.0f64, 0.0f64);
    for (a, b) in p.iter().zip(q) {
        cp += a;
        cq += b;
        d = d.max((cp - cq).abs());
    }
    d
}

/// The survival function of the Kolmogorov distribution, `P(K > x)`.
fn kolmogorov_sf(x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x < 1.0 {
        // P(K <= x) = √(2π)/x Σ exp(−(2j−1)² π² / (8x²)), fast for small x.
        let pi = std::f64::consts::PI;
        let mut cdf = 0.0;
        for j in 1..=20 {
            let k = (2 * j - 1) as f64;
            cdf += (-(k * k) * pi * pi / (8.0 * x * x)).exp();
        }
        return (1.0 - (2.0 * pi).sqrt() / x * cdf).clamp(0.0, 1.0);
    }
    let mut sum = 0.0;
    for j in 1..=100 {
        let j = j as f64;
        let term = (-2.0 * j * j * x * x).exp();
        sum += if j as u64 % 2 == 1 { term } else { -term };
        if term < 1e-300 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// Bin midpoints; the open end bins close at the reference minimum and maximum.
fn midpoints(feature: &Feature) -> Vec<f64> {
    let e = &feature.edges;
    let (Some(&first), Some(&last)) = (e.first(), e.last()) else {
        return vec![0.0];
    };
    let lo = if feature.reference_min.is_finite() {
        feature.reference_min.min(first)
    } else {
        first
    };
    let hi = if feature.reference_max.is_finite() {
        feature.reference_max.max(last)
    } else {
        last
    };
    let mut x = Vec::with_capacity(e.len() + 1);
    x.push((lo + first) / 2.0);
    x.extend(e.windows(2).map(|w| (w[0] + w[1]) / 2.0));
    x.push((last + hi) / 2.0);
    x
}

fn wasserstein(feature: &Feature, p: &[f64], q: &[f64]) -> f64 {
    let x = midpoints(feature);
    if x.len() != p.len() {
        return f64::NAN;
    }
    let (mut cp, mut cq, mut w) = (0.0, 0.0, 0.0);
    for j in 0..x.len() - 1 {
        cp += p[j];
        cq += q[j];
        w += (cp - cq).abs() * (x[j + 1] - x[j]);
    }
    let mean: f64 = x.iter().zip(q).map(|(x, q)| x * q).sum();
    let var: f64 = x.iter().zip(q).map(|(x, q)| q * (x - mean).powi(2)).sum();
    let sd = var.sqrt();
    if sd > 0.0 { w / sd } else { w }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, nine coefficients).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized upper incomplete gamma function Q(a, x).
fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let front = (-x + a * x.ln() - ln_gamma(a)).exp();
    if x < a + 1.0 {
        // Series for P(a, x).
        let (mut ap, mut sum, mut del) = (a, 1.0 / a, 1.0 / a);
        for _ in 0..1000 {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        (1.0 - sum * front).clamp(0.0, 1.0)
    } else {
        // Lentz's continued fraction for Q(a, x).
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..1000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (front * h).clamp(0.0, 1.0)
    }
}

fn chi_squared(reference: &[u64], current: &[u64]) -> (f64, f64) {
    let k = reference.len() as f64;
    let r: f64 = reference.iter().map(|&c| c as f64).sum();
    let c: f64 = current.iter().map(|&c| c as f64).sum();
    let stat: f64 = reference
        .iter()
        .zip(current)
        .map(|(&ri, &ci)| {
            let expected = c * (ri as f64 + 0.5) / (r + 0.5 * k);
            (ci as f64 - expected).powi(2) / expected
        })
        .sum();
    let dof = k - 1.0;
    let p = if dof > 0.0 {
        gamma_q(dof / 2.0, stat / 2.0)
    } else {
        1.0
    };
    (stat, p)
}

fn judge(feature: Feature, t: &Thresholds) -> Result<FeatureReport, String> {
    let bins = feature.reference.len();
    if feature.current.len() != bins || bins == 0 {
        return Err(format!(
            "feature '{}' has {} reference bins and {} current bins",
            feature.name,
            bins,
            feature.current.len()
        ));
    }
    let (q, reference_total) = proportions(&feature.reference);
    let (p, count) = proportions(&feature.current);
    let stat = |name: &str, value: f64| Statistic {
        name: name.to_string(),
        value,
    };
    let psi_value = psi(&p, &q);
    let mut statistics = vec![
        stat("count", count),
        stat("psi", psi_value),
        stat("js_distance", js_distance(&p, &q)),
    ];
    let p_test = match feature.kind {
        FeatureKind::Numeric => {
            let d = ks_statistic(&p, &q);
            let en = reference_total * count / (reference_total + count).max(1.0);
            let pvalue = kolmogorov_sf(en.sqrt() * d);
            statistics.push(stat("ks_statistic", d));
            statistics.push(stat("ks_pvalue", pvalue));
            statistics.push(stat("wasserstein", wasserstein(&feature, &p, &q)));
            pvalue
        }
        FeatureKind::Categorical => {
            let (chi2, pvalue) = chi_squared(&feature.reference, &feature.current);
            statistics.push(stat("chi2_statistic", chi2));
            statistics.push(stat("chi2_pvalue", pvalue));
            pvalue
        }
    };
    let test = match feature.kind {
        FeatureKind::Numeric => "KS",
        FeatureKind::Categorical => "chi-squared",
    };
    let significant = p_test < t.p_value;
    let (severity, reason) = if reference_total == 0.0 {
        (
            Severity::InsufficientData,
            "no reference values".to_string(),
        )
    } else if count < t.min_count {
        (
            Severity::InsufficientData,
            format!("{count} values, fewer than {}", t.min_count),
        )
    } else if psi_value >= t.psi_alert && significant {
        (
            Severity::Alert,
            format!(
                "PSI {psi_value:.3} >= {} and {test} p = {p_test:.2e} < {}",
                t.psi_alert, t.p_value
            ),
        )
    } else if psi_value >= t.psi_alert {
        (
            Severity::Warning,
            format!(
                "PSI {psi_value:.3} >= {} but {test} p = {p_test:.3}",
                t.psi_alert
            ),
        )
    } else if psi_value >= t.psi_warning && significant {
        (
            Severity::Warning,
            format!(
                "PSI {psi_value:.3} >= {} and {test} p = {p_test:.2e}",
                t.psi_warning
            ),
        )
    } else {
        (Severity::Ok, String::new())
    };
    Ok(FeatureReport {
        name: feature.name,
        role: feature.role,
        statistics,
        severity,
        reason,
    })
}

impl Monitor for Default {
    fn analyze(features: Vec<Feature>, config: &str) -> Result<Vec<FeatureReport>, String> {
        let thresholds = parse_config(config)?;
        features
            .into_iter()
            .map(|f| judge(f, &thresholds))
            .collect()
    }
}

kiln_monitor_sdk::export_monitor!(Default);
