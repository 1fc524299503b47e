import Foundation

struct StoredAccount: Sendable {
    var email: String
    var password: String
    var maxJobs: Int
    var jwt: SimulatedJWT
}

struct SimulatedJWT: Codable, Sendable {
    var token: String
    var exp: Double
    var iat: Double
    var id: Int
}

/// The simulator's mutable state, behind one lock.
struct SimulatorState {
    var accounts: [String: StoredAccount] = [:]
    var behaviors: [String: SimulatedAccountBehavior]
    var faults: [SimulatedFault]
    var journal = SimulatorJournal()
    let journalLimit: Int
    var inFlight = 0
    var inFlightByEmail: [String: Int] = [:]
    var requestsByEmail: [String: Int] = [:]
    var nextJWTID = 1000
    var shuttingDown = false

    init(configuration: UseAPISimulatorConfiguration) {
        behaviors = configuration.accounts
        faults = configuration.faults
        journalLimit = max(1, configuration.journalLimit)
    }

    /// Registers a request's start; returns its sequence number for this email
    /// (1 for the first) and the fault rule that applies.
    mutating func begin(email: String?) -> (attempt: Int, fault: SimulatedFault?) {
        inFlight += 1
        journal.totalRequests += 1
        journal.maxConcurrentRequests = max(journal.maxConcurrentRequests, inFlight)
        var attempt = 0
        if let email {
            let concurrent = inFlightByEmail[email, default: 0] + 1
            inFlightByEmail[email] = concurrent
            if concurrent > 1, !journal.overlappingEmails.contains(email) {
                journal.overlappingEmails.append(email)
            }
            attempt = requestsByEmail[email, default: 0] + 1
            requestsByEmail[email] = attempt
        }
        return (attempt, faults.first { $0.matches(email) })
    }

    mutating func end(_ record: SimulatorRequestRecord) {
        inFlight -= 1
        if let email = record.email {
            let remaining = inFlightByEmail[email, default: 1] - 1
            inFlightByEmail[email] = remaining > 0 ? remaining : nil
        }
        if journal.requests.count >= journalLimit {
            journal.requests.removeFirst(journal.requests.count - journalLimit + 1)
        }
        journal.requests.append(record)
    }

    mutating func resetJournal() {
        journal = SimulatorJournal()
        requestsByEmail = [:]
    }
}
