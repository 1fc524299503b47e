internal import CRdKafka
import Dispatch
import Foundation
import Logging
import Synchronization

struct ProducerState {
    var nextID: UInt = 1
    var pending: [UInt: CheckedContinuation<KafkaDeliveryReport, any Error>] = [:]
    var stopped = false
}

/// Owns the librdkafka producer and its delivery-report poll thread.
final class RDKafkaProducerCore: RDKafkaEventDelegate, @unchecked Sendable {
    let handle: RDKafkaHandle
    let logger: Logger
    let state = Mutex(ProducerState())
    private let blockingQueue = DispatchQueue(label: "kafka.producer.blocking")
    private let pollThreadDone = DispatchSemaphore(value: 0)

    init(configuration: KafkaProducerConfiguration, logger: Logger) throws(KafkaError) {
        self.logger = logger
        self.handle = try RDKafkaHandle(
            type: RD_KAFKA_PRODUCER,
            properties: configuration.rdKafkaProperties,
            logger: logger
        ) { conf in
            rd_kafka_conf_set_dr_msg_cb(conf, rdKafkaDeliveryCallback)
        }
        handle.context.delegate = self
        let thread = Thread { [self] in self.runPollLoop() }
        thread.name = "kafka-producer-poll"
        thread.start()
    }

    private func runPollLoop() {
        while !state.withLock({ $0.stopped }) {
            rd_kafka_poll(handle.pointer, 100)
        }
        pollThreadDone.signal()
    }

    func delivered(_ message: UnsafePointer<rd_kafka_message_t>) {
        let raw = message.pointee
        let id = UInt(bitPattern: raw._private)
        guard let continuation = state.withLock({ $0.pending.removeValue(forKey: id) }) else { return }
        if raw.err == RD_KAFKA_RESP_ERR_NO_ERROR {
            continuation.resume(
                returning: KafkaDeliveryReport(
                    topic: String(cString: rd_kafka_topic_name(raw.rkt)),
                    partition: raw.partition,
                    offset: raw.offset
                )
            )
        } else {
            continuation.resume(throwing: KafkaError(raw.err, message: "delivery failed", isFatal: handle.fatalError != nil))
        }
    }

    func send(_ message: KafkaProducerMessage) async throws(KafkaError) -> KafkaDeliveryReport {
        while true {
            // Cancellation stops the wait for the delivery report (the record
            // may still be delivered; its report is then ignored).
            let sent = Mutex<UInt?>(nil)
            do {
                return try await withTaskCancellationHandler {
                    try await withCheckedThrowingContinuation { continuation in
                        let id: UInt? = state.withLock { state in
                            guard !state.stopped else { return nil }
                            let id = state.nextID
                            state.nextID += 1
                            state.pending[id] = continuation
                            return id
                        }
                        guard let id else {
                            continuation.resume(throwing: KafkaError.closed("producer"))
                            return
                        }
                        sent.withLock { $0 = id }
                        if Task.isCancelled {
                            state.withLock { $0.pending.removeValue(forKey: id) }?.resume(throwing: KafkaError.cancelled)
                            return
                        }
                        if let error = produce(message, id: id) {
                            state.withLock { $0.pending.removeValue(forKey: id) }?.resume(throwing: error)
                        }
                    }
                } onCancel: {
                    if let id = sent.withLock({ $0 }) {
                        state.withLock { $0.pending.removeValue(forKey: id) }?.resume(throwing: KafkaError.cancelled)
                    }
                }
            } catch let error as KafkaError where error.code == .queueFull {
                // librdkafka's local queue is full: wait for deliveries to drain
                // it, unless the caller gave up.
                do {
                    try await Task.sleep(for: .milliseconds(5))
                } catch {
                    throw KafkaError(code: .queueFull, message: "cancelled while librdkafka's local queue was full")
                }
            } catch let error as KafkaError {
                throw error
            } catch {
                preconditionFailure("unexpected error \(error)")
            }
        }
    }

    /// Hands one record to librdkafka (copying its bytes). Returns the error
    /// if librdkafka refused it; the delivery report arrives otherwise.
    private func produce(_ message: KafkaProducerMessage, id: UInt) -> KafkaError? {
        let headers: OpaquePointer? = message.headers.isEmpty ? nil : rd_kafka_headers_new(message.headers.count)
        for header in message.headers {
            if let value = header.value {
                value.withUnsafeBytes { bytes in
                    _ = rd_kafka_header_add(headers, header.key, -1, bytes.baseAddress ?? UnsafeRawPointer(emptyBytes), bytes.count)
                }
            } else {
                _ = rd_kafka_header_add(headers, header.key, -1, nil, 0)
            }
        }
        let error: OpaquePointer? = message.topic.withCString { topic in
            withOptionalBytes(message.key) { key in
                withOptionalBytes(message.value) { value in
                    var vus = [rd_kafka_vu_t](repeating: rd_kafka_vu_t(), count: 7)
                    vus[0].vtype = RD_KAFKA_VTYPE_TOPIC
                    vus[0].u.cstr = topic
                    vus[1].vtype = RD_KAFKA_VTYPE_KEY
                    vus[1].u.mem.ptr = key.map { $0.baseAddress.map { UnsafeMutableRawPointer(mutating: $0) } ?? emptyBytes }
                    vus[1].u.mem.size = key?.count ?? 0
                    vus[2].vtype = RD_KAFKA_VTYPE_VALUE
                    // A non-null pointer with size 0 is an empty value; null is a tombstone.
                    vus[2].u.mem.ptr = value.map { $0.baseAddress.map { UnsafeMutableRawPointer(mutating: $0) } ?? emptyBytes }
                    vus[2].u.mem.size = value?.count ?? 0
                    vus[3].vtype = RD_KAFKA_VTYPE_MSGFLAGS
                    vus[3].u.i = RD_KAFKA_MSG_F_COPY
                    vus[4].vtype = RD_KAFKA_VTYPE_OPAQUE
                    vus[4].u.ptr = UnsafeMutableRawPointer(bitPattern: id)
                    vus[5].vtype = RD_KAFKA_VTYPE_PARTITION
                    vus[5].u.i32 = message.partition ?? RD_KAFKA_PARTITION_UA
                    var count = 6
                    if let headers {
                        vus[6].vtype = RD_KAFKA_VTYPE_HEADERS
                        vus[6].u.headers = headers
                        count = 7
                    }
                    return rd_kafka_produceva(handle.pointer, vus, count)
                }
            }
        }
        guard let error else { return nil }
        // On failure the headers were not taken over.
        if let headers { rd_kafka_headers_destroy(headers) }
        return KafkaError(consuming: error, context: "produce to \(message.topic)")
    }

    func flush(timeout: Duration) async throws(KafkaError) {
        let milliseconds = Int32(clamping: timeout.milliseconds)
        let err = await withCheckedContinuation { continuation in
            blockingQueue.async { [handle] in continuation.resume(returning: rd_kafka_flush(handle.pointer, milliseconds)) }
        }
        let rk = handle.pointer
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(err, message: "\(rd_kafka_outq_len(rk)) records still undelivered after flush")
        }
    }

    func close(timeout: Duration) async {
        do {
            try await flush(timeout: timeout)
        } catch {
            logger.warning("Kafka producer closed with undelivered records", metadata: ["kafka.error.name": "\(error.name)"])
            await withCheckedContinuation { continuation in
                blockingQueue.async { [handle] in
                    let rk = handle.pointer
                    rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT)
                    rd_kafka_poll(rk, 0)
                    continuation.resume()
                }
            }
        }
        stop()
        await withCheckedContinuation { continuation in
            blockingQueue.async { [pollThreadDone] in
                pollThreadDone.wait()
                pollThreadDone.signal()
                continuation.resume()
            }
        }
    }

    /// Stops the poll thread and fails every send still waiting.
    func stop() {
        let orphans = state.withLock { state in
            state.stopped = true
            defer { state.pending = [:] }
            return Array(state.pending.values)
        }
        for continuation in orphans {
            continuation.resume(throwing: KafkaError.closed("producer"))
        }
    }
}

/// A valid address for zero-length buffers, which librdkafka must not see as null.
private nonisolated(unsafe) let emptyBytes = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)

private func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
    guard let bytes else { return body(nil) }
    return bytes.withUnsafeBytes { body($0) }
}

private let rdKafkaDeliveryCallback: @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void =
    {
        _,
        message,
        opaque in
        guard let message else { return }
        RDKafkaCallbackContext.from(opaque)?.delegate?.delivered(message)
    }
