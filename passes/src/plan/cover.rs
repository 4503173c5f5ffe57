//! Greedy interval cover: the smallest set of intervals covering a band, and what is left
//! uncovered. Intervals are closed `[lo, hi]`.

/// The result of covering `band` with some of the candidate intervals.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Cover {
    /// Indices of the chosen intervals, in increasing order of their lower end.
    pub chosen: Vec<usize>,
    /// Sub-ranges of the band no candidate covers.
    pub uncovered: Vec<(f64, f64)>,
}

/// The classic greedy algorithm: from the lowest uncovered point, take the interval starting
/// at or below it that reaches furthest; when none does, record a gap up to the next interval.
/// Optimal in the number of intervals whenever the band can be covered, and it covers every
/// coverable part otherwise.
pub fn greedy_cover(intervals: &[(f64, f64)], band: (f64, f64)) -> Cover {
    let mut order: Vec<usize> = (0..intervals.len()).filter(|i| intervals[*i].0 <= intervals[*i].1).collect();
    order.sort_by(|a, b| intervals[*a].0.total_cmp(&intervals[*b].0));
    let (mut at, end) = band;
    let (mut chosen, mut uncovered) = (vec![], vec![]);
    let mut next = 0;
    loop {
        // Among intervals starting at or below `at`, the one reaching furthest.
        let mut best: Option<usize> = None;
        while next < order.len() && intervals[order[next]].0 <= at {
            let i = order[next];
            if intervals[i].1 >= at && best.is_none_or(|b| intervals[i].1 > intervals[b].1) {
                best = Some(i);
            }
            next += 1;
        }
        match best {
            // Closed intervals: `[a, b]` and `[b, c]` cover `[a, c]`.
            Some(i) if intervals[i].1 > at || at >= end => {
                chosen.push(i);
                at = intervals[i].1;
                if at >= end {
                    break;
                }
            }
            _ => {
                let gap_end = order.get(next).map(|i| intervals[*i].0).unwrap_or(end).min(end);
                uncovered.push((at, gap_end));
                if next >= order.len() || gap_end >= end {
                    break;
                }
                at = gap_end;
            }
        }
    }
    Cover { chosen, uncovered }
}

/// The smallest number of intervals whose union covers `band`, by exhaustive search (for tests
/// and small instances); `None` if no subset covers it.
pub fn exhaustive_min_cover(intervals: &[(f64, f64)], band: (f64, f64)) -> Option<usize> {
    let n = intervals.len();
    assert!(n <= 20, "exhaustive search is for small instances");
    let mut best: Option<usize> = None;
    for mask in 0u32..(1 << n) {
        let count = mask.count_ones() as usize;
        if best.is_some_and(|b| count >= b) {
            continue;
        }
        let mut chosen: Vec<(f64, f64)> = (0..n).filter(|i| mask & (1 << i) != 0).map(|i| intervals[i]).collect();
        chosen.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut at = band.0;
        let mut covered = false;
        for (lo, hi) in chosen {
            if lo > at {
                break;
            }
            if hi >= at {
                at = hi;
            }
            if hi >= band.1 {
                covered = true;
                break;
            }
        }
        if covered {
            best = Some(count);
        }
    }
    best
}
