import AccountWorker
import Foundation
import TestSupport
import Testing
import UseAPI

@Suite("Command validation")
struct CommandDecoderTests {
    let decoder = CommandDecoder(maxCommandBytes: 4096)

    func decode(_ json: String) -> Result<AccountCommand, CommandRejection> {
        decoder.decode(Array(json.utf8))
    }

    func rejected(_ json: String) -> CommandRejection? {
        if case .failure(let rejection) = decode(json) { rejection } else { nil }
    }

    @Test("a full upsert and a delete decode; unknown fields are ignored")
    func valid() throws {
        let upsert = try decode(#"{"id":"c-1","email":"a@b.io","password":"pw","maxJobs":5,"useWorkspace":"team-1","extra":[1]}"#).get()
        #expect(upsert.id == "c-1")
        #expect(upsert.type == .upsert)
        #expect(upsert.email == "a@b.io")
        #expect(upsert.password == "pw")
        #expect(upsert.maxJobs == 5)
        #expect(upsert.useWorkspace == .team("team-1"))
        let withFlag = try decode(
            #"{"id":"c-1","type":"account.upsert","email":"a@b.io","password":"pw","maxJobs":1,"useWorkspace":false}"#
        ).get()
        #expect(withFlag.useWorkspace == .enabled(false))
        let delete = try decode(#"{"id":"c-2","type":"account.delete","email":"a@b.io"}"#).get()
        #expect(delete.type == .delete)
        #expect(delete.password == nil)
    }

    @Test(
        "each field rule rejects with 400 and names the field",
        arguments: [
            (#"{"email":"a@b.io","password":"p","maxJobs":5}"#, "id"),
            (#"{"id":"","email":"a@b.io","password":"p","maxJobs":5}"#, "id"),
            (#"{"id":7,"email":"a@b.io","password":"p","maxJobs":5}"#, "id"),
            (#"{"id":"x\u0007","email":"a@b.io","password":"p","maxJobs":5}"#, "id"),
            ("{\"id\":\"\(String(repeating: "i", count: 129))\",\"email\":\"a@b.io\",\"password\":\"p\",\"maxJobs\":5}", "id"),
            (#"{"id":"1","type":"account.rename","email":"a@b.io","password":"p","maxJobs":5}"#, "type"),
            (#"{"id":"1","type":null,"email":"a@b.io","password":"p","maxJobs":5}"#, "type"),
            (#"{"id":"1","password":"p","maxJobs":5}"#, "email"),
            (#"{"id":"1","email":"ab.io","password":"p","maxJobs":5}"#, "email"),
            (#"{"id":"1","email":"a@b@c.io","password":"p","maxJobs":5}"#, "email"),
            (#"{"id":"1","email":"a b@c.io","password":"p","maxJobs":5}"#, "email"),
            (#"{"id":"1","email":"a\nb@c.io","password":"p","maxJobs":5}"#, "email"),
            (#"{"id":"1","email":"a\u0000@c.io","password":"p","maxJobs":5}"#, "email"),
            (#"{"id":"1","email":"a\u2003@c.io","password":"p","maxJobs":5}"#, "email"),
            ("{\"id\":\"1\",\"email\":\"\(String(repeating: "a", count: 250))@c.io\",\"password\":\"p\",\"maxJobs\":5}", "email"),
            (#"{"id":"1","email":"a@b.io","maxJobs":5}"#, "password"),
            (#"{"id":"1","email":"a@b.io","password":"","maxJobs":5}"#, "password"),
            (#"{"id":"1","email":"a@b.io","password":42,"maxJobs":5}"#, "password"),
            ("{\"id\":\"1\",\"email\":\"a@b.io\",\"password\":\"\(String(repeating: "p", count: 1025))\",\"maxJobs\":5}", "password"),
            (#"{"id":"1","email":"a@b.io","password":"p"}"#, "maxJobs"),
            (#"{"id":"1","email":"a@b.io","password":"p","maxJobs":"5"}"#, "maxJobs"),
            (#"{"id":"1","email":"a@b.io","password":"p","maxJobs":5.5}"#, "maxJobs"),
            (#"{"id":"1","email":"a@b.io","password":"p","maxJobs":0}"#, "maxJobs"),
            (#"{"id":"1","email":"a@b.io","password":"p","maxJobs":11}"#, "maxJobs"),
            (#"{"id":"1","email":"a@b.io","password":"p","maxJobs":true}"#, "maxJobs"),
            (#"{"id":"1","email":"a@b.io","password":"p","maxJobs":5,"useWorkspace":""}"#, "useWorkspace"),
            (#"{"id":"1","email":"a@b.io","password":"p","maxJobs":5,"useWorkspace":3}"#, "useWorkspace"),
            (#"{"id":"1","email":"a@b.io","password":"p","maxJobs":5,"useWorkspace":null}"#, "useWorkspace"),
        ]
    )
    func fieldRules(json: String, field: String) throws {
        let rejection = try #require(rejected(json), "accepted: \(json)")
        #expect(rejection.code == 400)
        #expect(rejection.field == field)
        #expect(!rejection.isUndecodable)
    }

    @Test("unicode emails are accepted when they follow the rules")
    func unicodeEmail() throws {
        let command = try decode(#"{"id":"1","email":"josé@exämple.de","password":"p","maxJobs":2}"#).get()
        #expect(command.email == "josé@exämple.de")
    }

    @Test("a delete needs no password or maxJobs")
    func deleteNeedsLess() throws {
        let command = try decode(#"{"id":"1","type":"account.delete","email":"a@b.io","maxJobs":"ignored"}"#).get()
        #expect(command.type == .delete)
    }

    @Test(
        "undecodable messages: 400 (or 413 over the limit) and marked for the DLQ",
        arguments: [
            (nil, 400), ([], 400), (Array("not json".utf8), 400), (Array("[1,2]".utf8), 400), (Array("\"s\"".utf8), 400),
            (Array("null".utf8), 400), ([0xFF, 0xFE, 0x7B, 0x7D], 400), (Array(repeating: UInt8(ascii: " "), count: 4097), 413),
        ] as [([UInt8]?, Int)]
    )
    func undecodable(value: [UInt8]?, code: Int) throws {
        guard case .failure(let rejection) = decoder.decode(value) else {
            Issue.record("accepted")
            return
        }
        #expect(rejection.code == code)
        #expect(rejection.isUndecodable)
        #expect(rejection.dlqReason == (code == 413 ? "too-large" : "not-a-json-object"))
    }

    @Test("the size limit comes first: an oversize valid command is 413")
    func sizeFirst() throws {
        let small = CommandDecoder(maxCommandBytes: 20)
        guard case .failure(let rejection) = small.decode(Array(#"{"id":"1","email":"a@b.io","password":"p","maxJobs":5}"#.utf8)) else {
            Issue.record("accepted")
            return
        }
        #expect(rejection.code == 413)
    }

    @Test("what is readable is kept for the result; the password never is")
    func readableFields() throws {
        let rejection = try #require(rejected(#"{"id":"c-9","type":"account.delete","email":"bad email@x.io","password":"hunter2"}"#))
        #expect(rejection.commandId == "c-9")
        #expect(rejection.email == "bad email@x.io")
        #expect(rejection.type == .delete)
        // Rejections decided after the password was read (the password itself,
        // then each later field): only there could it leak into the rejection.
        // (A rejection at the email, decided before the password is looked
        // at, cannot show it whatever the code does.)
        for json in [
            "{\"id\":\"c-10\",\"email\":\"a@b.io\",\"password\":\"hunter2\(String(repeating: "x", count: 1024))\",\"maxJobs\":5}",
            #"{"id":"c-11","email":"a@b.io","password":"hunter2","maxJobs":11}"#,
            #"{"id":"c-12","email":"a@b.io","password":"hunter2","maxJobs":"5"}"#,
            #"{"id":"c-13","email":"a@b.io","password":"hunter2","maxJobs":5,"useWorkspace":7}"#,
        ] {
            let rejection = try #require(rejected(json), "accepted: \(json.prefix(80))")
            #expect(!"\(rejection)".contains("hunter2"), "the password in: \(rejection)")
            #expect(!String(reflecting: rejection).contains("hunter2"))
        }
        let noID = try #require(rejected(#"{"id":12,"email":"a@b.io"}"#))
        #expect(noID.commandId == nil)
    }

    @Test("values exactly at each upper limit are accepted: 128-character id, 254-byte email, 1024-byte password, maxJobs 10")
    func upperLimits() throws {
        let id = String(repeating: "i", count: 128)
        let email = String(repeating: "a", count: 249) + "@c.io"
        #expect(email.utf8.count == 254)
        let password = String(repeating: "p", count: 1024)
        let command = try decode(#"{"id":"\#(id)","email":"\#(email)","password":"\#(password)","maxJobs":10}"#).get()
        #expect(command.id == id)
        #expect(command.email == email)
        #expect(command.password == password)
        #expect(command.maxJobs == 10)
        // One past each limit is rejected (the field table above has the rest).
        #expect(rejected(#"{"id":"\#(id)i","email":"a@b.io","password":"p","maxJobs":1}"#)?.field == "id")
        #expect(rejected(#"{"id":"1","email":"a\#(email)","password":"p","maxJobs":1}"#)?.field == "email")
        #expect(rejected(#"{"id":"1","email":"a@b.io","password":"\#(password)p","maxJobs":1}"#)?.field == "password")
    }

    @Test("unknown fields are ignored whatever their value: 1e400, deep arrays, repeated keys inside them")
    func unknownFields() throws {
        let command = try decode(#"{"id":"c-1","email":"alice@example.com","password":"pw","maxJobs":5,"note":1e400,"x":[[[{"a":1,"a":2}]]]}"#).get()
        #expect(command.id == "c-1")
        #expect(try decode(#"{"id":"c-2","email":"a@b.io","password":"pw","maxJobs":5.0}"#).get().maxJobs == 5, "5.0 is the integer 5")
    }

    @Test(
        "a repeated key is a 400 validation error naming it; a repeated id or email is not echoed",
        arguments: [
            (#"{"id":"a","id":"b","email":"a@b.io","password":"p","maxJobs":5}"#, "id"),
            (#"{"id":"a","email":"a@b.io","email":"c@d.io","password":"p","maxJobs":5}"#, "email"),
            (#"{"id":"a","email":"a@b.io","password":"p","maxJobs":5,"maxJobs":5}"#, "maxJobs"),
            (#"{"id":"a","email":"a@b.io","password":"p","maxJobs":5,"note":1,"note":2}"#, "note"),
        ]
    )
    func repeatedKeys(json: String, field: String) throws {
        let rejection = try #require(rejected(json))
        #expect(rejection.code == 400 && !rejection.isUndecodable)
        #expect(rejection.field == field)
        #expect(rejection.commandId == (field == "id" ? nil : "a"))
        #expect(rejection.email == (field == "email" ? nil : "a@b.io"))
    }

    @Test("fuzz: no record traps the decoder; what it accepts follows every rule")
    func fuzz() {
        let fuzzer = Fuzzer(
            name: "CommandDecoder",
            corpus: [
                #"{"id":"c-1","email":"alice@example.com","password":"pw","maxJobs":5,"note":1e400}"#,
                #"{"id":"c-2","type":"account.delete","email":"bob@example.com"}"#,
                #"{"id":"c-3","type":"account.upsert","email":"josé@exämple.de","password":"pé","maxJobs":10,"useWorkspace":"team-1"}"#,
                #"{"id":"c-4","email":"a@b.io","password":"p","maxJobs":1,"useWorkspace":false}"#,
            ]
        )
        fuzzer.run { bytes in
            switch decoder.decode(bytes) {
            case .success(let command):
                #expect((1...128).contains(command.id.count))
                #expect(command.email.utf8.count <= 254 && command.email.split(separator: "@", omittingEmptySubsequences: false).count == 2)
                if command.type == .upsert {
                    #expect((1...1024).contains(command.password?.utf8.count ?? 0))
                    #expect((1...10).contains(command.maxJobs ?? 0))
                }
            case .failure(let rejection):
                #expect(rejection.code == 400 || rejection.code == 413)
                #expect(rejection.message.utf8.count < 256)
            }
        }
    }
}
