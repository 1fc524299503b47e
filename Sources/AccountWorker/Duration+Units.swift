extension Duration {
    /// Whole milliseconds, saturating at `Int64.min`/`Int64.max` instead of trapping.
    var milliseconds: Int64 { wholeUnits(perSecond: 1_000) }

    /// Whole nanoseconds, saturating at `Int64.min`/`Int64.max` instead of trapping.
    var nanoseconds: Int64 { wholeUnits(perSecond: 1_000_000_000) }

    private func wholeUnits(perSecond: Int64) -> Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: perSecond)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, sumOverflow) = whole.addingReportingOverflow(attoseconds / (1_000_000_000_000_000_000 / perSecond))
        if sumOverflow { return seconds < 0 ? .min : .max }
        return sum
    }
}
