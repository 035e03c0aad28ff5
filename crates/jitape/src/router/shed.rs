//! Which conferences the router ends when the load guard asks for a share of them
//! (`crate::load`): pure, from each conference's room, start order and whether it is already
//! ending for overload.

/// The rooms to end for overload: `percent` of the conferences not already ending for it
/// (at least one), the newest first: they have recorded the least.
pub fn choose<'a>(
    conferences: impl Iterator<Item = (&'a str, u64, bool)>,
    percent: u32,
) -> Vec<String> {
    let mut running: Vec<(&str, u64)> = conferences
        .filter(|(_, _, shed)| !shed)
        .map(|(room, generation, _)| (room, generation))
        .collect();
    let n = (running.len() * percent.min(100) as usize)
        .div_ceil(100)
        .max(1);
    running.sort_by_key(|(_, generation)| std::cmp::Reverse(*generation));
    running
        .into_iter()
        .take(n)
        .map(|(room, _)| room.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_share_goes_and_never_one_already_going() {
        let rooms = [
            ("a@muc", 1, false),
            ("b@muc", 2, false),
            ("c@muc", 3, true),
            ("d@muc", 4, false),
            ("e@muc", 5, false),
            ("f@muc", 6, false),
        ];
        // 5 not yet shed: 40 % of them is 2, the newest two that are not already going.
        assert_eq!(choose(rooms.into_iter(), 40), ["f@muc", "e@muc"]);
        // A share that rounds to less than one is still one; a share over all is all.
        assert_eq!(choose(rooms.into_iter(), 1), ["f@muc"]);
        assert_eq!(
            choose(rooms.into_iter(), 100),
            ["f@muc", "e@muc", "d@muc", "b@muc", "a@muc"]
        );
        assert!(choose([("c@muc", 3, true)].into_iter(), 50).is_empty());
        assert!(choose(std::iter::empty(), 50).is_empty());
    }
}
