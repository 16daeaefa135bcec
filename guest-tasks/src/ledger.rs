//! Tasks that change their arguments, for `docs/semantics.md`: a task works
//! on its own copy of what it was given, and only what it returns reaches
//! the caller. A task that fails returns nothing, so its half-done changes
//! vanish with it: a transaction for free.

use wasmpool_guest::task;

/// Sorts its copy of `values` to find their median (`0.0` for none). The
/// caller's vector is not sorted: the task never sees it, only a copy.
#[task]
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Sorts `values` and returns them: the way to hand changes back.
#[task]
pub fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

/// Applies `transfers` (from account, to account, amount) one by one to
/// `balances` and returns the new balances, or fails at the first transfer
/// that would overdraw an account or names one that does not exist. The
/// transfers before it were applied to the task's copy only, so on failure
/// the caller still holds the balances it started with.
#[task]
pub fn apply_transfers(mut balances: Vec<i64>, transfers: Vec<(u32, u32, i64)>) -> Result<Vec<i64>, String> {
    for (n, &(from, to, amount)) in transfers.iter().enumerate() {
        let (from, to) = (from as usize, to as usize);
        if from >= balances.len() || to >= balances.len() {
            return Err(format!("transfer {n}: no account {}", from.max(to)));
        }
        if amount < 0 || balances[from] < amount {
            return Err(format!("transfer {n}: account {from} cannot pay {amount} (balance {})", balances[from]));
        }
        balances[from] -= amount;
        balances[to] += amount;
    }
    Ok(balances)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }

    #[test]
    fn transfers_apply_in_order_or_not_at_all() {
        assert_eq!(apply_transfers(vec![10, 0], vec![(0, 1, 4), (1, 0, 1)]), Ok(vec![7, 3]));
        let overdrawn = apply_transfers(vec![10, 0], vec![(0, 1, 4), (1, 0, 5)]).unwrap_err();
        assert!(overdrawn.starts_with("transfer 1: account 1 cannot pay 5"), "{overdrawn}");
        assert!(apply_transfers(vec![1], vec![(0, 3, 1)]).unwrap_err().contains("no account 3"));
    }
}
