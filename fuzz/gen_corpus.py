#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (fuzz/corpus/<target>/), deterministically.

    python3 fuzz/gen_corpus.py

request (and request_diff, which shares it): one selector byte (bit 0: TCP; bits 1..4: the
client address, an index into SOURCES in fuzz/src/lib.rs), then a DNS message written byte by
byte. smtp_reply: two bytes that seed the chunking, then what a relay sends. config: TOML, a NUL,
then zone file text.
"""

import os
import re
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Indexes into SOURCES (fuzz/src/lib.rs).
OXFORD_V4, CAMBRIDGE_V4, LONDON_V4, NOSITE_V4, TRUSTED_V4 = 0, 1, 2, 3, 4
OXFORD_V6, BIG_V6, TRUSTED_V6, NOSITE_V6, MAPPED_TRUSTED = 5, 6, 7, 8, 9
MAPPED_OXFORD, LOOP_V4, LOOP_V6, CAMBRIDGE16_V4, UNTRUSTED_V4 = 10, 11, 12, 13, 14

A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, OPT = 1, 2, 5, 6, 12, 15, 16, 28, 33, 41
IXFR, AXFR, ANY, CAA = 251, 252, 255, 257
IN, CH, CLASS_ANY = 1, 3, 255


def sel(src, tcp=False):
    return bytes([(src << 1) | int(tcp)])


def name(text):
    out = b""
    for label in text.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def header(qid=0x1234, opcode=0, rd=True, qd=1, an=0, ns=0, ar=0, qr=False, cd=False, ad=False):
    b2 = (0x80 if qr else 0) | (opcode << 3) | (1 if rd else 0)
    b3 = (0x10 if cd else 0) | (0x20 if ad else 0)
    return struct.pack(">HBBHHHH", qid, b2, b3, qd, an, ns, ar)


def question(qname, qtype, qclass=IN):
    wire = qname if isinstance(qname, bytes) else name(qname)
    return wire + struct.pack(">HH", qtype, qclass)


def option(code, data):
    return struct.pack(">HH", code, len(data)) + data


def ecs(family, source, scope, addr):
    return option(8, struct.pack(">HBB", family, source, scope) + addr)


def siphash24(key, data):
    """SipHash-2-4 (as RFC 9018 server cookies use it), for seeds with valid cookies."""
    mask = (1 << 64) - 1

    def rotl(x, b):
        return ((x << b) | (x >> (64 - b))) & mask

    k0, k1 = struct.unpack("<QQ", key)
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D, k0 ^ 0x6C7967656E657261,
         k1 ^ 0x7465646279746573]

    def rounds(n):
        for _ in range(n):
            v[0] = (v[0] + v[1]) & mask; v[1] = rotl(v[1], 13); v[1] ^= v[0]; v[0] = rotl(v[0], 32)
            v[2] = (v[2] + v[3]) & mask; v[3] = rotl(v[3], 16); v[3] ^= v[2]
            v[0] = (v[0] + v[3]) & mask; v[3] = rotl(v[3], 21); v[3] ^= v[0]
            v[2] = (v[2] + v[1]) & mask; v[1] = rotl(v[1], 17); v[1] ^= v[2]; v[2] = rotl(v[2], 32)

    tail = len(data) % 8
    for i in range(0, len(data) - tail, 8):
        m = struct.unpack("<Q", data[i:i + 8])[0]
        v[3] ^= m
        rounds(2)
        v[0] ^= m
    last = (len(data) & 0xFF) << 56
    for i, b in enumerate(data[len(data) - tail:]):
        last |= b << (8 * i)
    v[3] ^= last
    rounds(2)
    v[0] ^= last
    v[2] ^= 0xFF
    rounds(4)
    return struct.pack("<Q", v[0] ^ v[1] ^ v[2] ^ v[3])


# COOKIE_SECRET and COOKIE_NOW of fuzz/src/lib.rs.
COOKIE_SECRET = bytes.fromhex("e5e973e5a6b2a43f48e7dc849e37bfcf")
COOKIE_NOW = 1_700_000_000
assert siphash24(COOKIE_SECRET, bytes.fromhex("2464c4abcf10c957010000005cf79f11c63364")
                 + bytes([100])) == bytes.fromhex("1f8130c3eee29480"), "RFC 9018 appendix A.1"


def cookie(client, ip, stamp=COOKIE_NOW, secret=COOKIE_SECRET):
    """A COOKIE option with an RFC 9018 server cookie for `client` at `ip` (packed)."""
    head = bytes([1, 0, 0, 0]) + struct.pack(">I", stamp)
    return option(10, client + head + siphash24(secret, client + head + ip))


def opt(payload=1232, version=0, do=False, ext_rcode=0, options=b""):
    flags = 0x8000 if do else 0
    return b"\x00" + struct.pack(">HHBBHH", OPT, payload, ext_rcode, version, flags, len(options)) + options


def query(qname, qtype, qclass=IN, edns=None, **kw):
    ar = kw.pop("ar", 1 if edns is not None else 0)
    return header(ar=ar, **kw) + question(qname, qtype, qclass) + (edns or b"")


def request_seeds():
    s = {}
    Z = "smarthost.internal"
    # Site and shared MX answers, the heart of the server, in mixed case.
    s["mx_site_mixed_case"] = sel(OXFORD_V4) + query("OxFord.SmartHost.Internal", MX)
    s["mx_site_edns"] = sel(CAMBRIDGE_V4) + query("cambridge." + Z, MX, edns=opt())
    s["mx_big_plain_udp"] = sel(NOSITE_V4) + query("big." + Z, MX)
    s["mx_big_edns_1232"] = sel(NOSITE_V4) + query("big." + Z, MX, edns=opt(1232))
    s["mx_big_edns_4096"] = sel(NOSITE_V6) + query("BIG." + Z, MX, edns=opt(4096))
    s["mx_big_tcp"] = sel(NOSITE_V4, tcp=True) + query("big." + Z, MX)
    s["mx_apex_default_view"] = sel(NOSITE_V4) + query(Z, MX, edns=opt())
    s["mx_apex_oxford_view_v6"] = sel(OXFORD_V6) + query(Z, MX)
    s["mx_apex_mapped_v4"] = sel(MAPPED_OXFORD) + query(Z, MX)
    s["mx_apex_cambridge16"] = sel(CAMBRIDGE16_V4) + query(Z, MX)
    s["mx_shared_name_big_view_tcp"] = sel(BIG_V6, tcp=True) + query("mx." + Z, MX, edns=opt())
    s["mx_shared_ecs_v4_trusted"] = sel(TRUSTED_V4) + query(
        Z, MX, edns=opt(options=ecs(1, 24, 0, bytes([10, 2, 7]))))
    s["mx_shared_ecs_v6_trusted"] = sel(TRUSTED_V6) + query(
        "relay." + Z, MX, edns=opt(options=ecs(2, 48, 0, bytes.fromhex("20010db80004"))))
    s["mx_shared_ecs_mapped_trusted"] = sel(MAPPED_TRUSTED) + query(
        "mx." + Z, MX, edns=opt(options=ecs(1, 20, 0, bytes([10, 3, 0]))))
    s["mx_shared_ecs_untrusted"] = sel(UNTRUSTED_V4) + query(
        Z, MX, edns=opt(options=ecs(1, 16, 0, bytes([10, 1]))))
    s["mx_shared_ecs_prefix0"] = sel(TRUSTED_V4) + query(Z, MX, edns=opt(options=ecs(1, 0, 0, b"")))
    s["mx_ecs_scope_nonzero"] = sel(TRUSTED_V4) + query(
        Z, MX, edns=opt(options=ecs(1, 24, 8, bytes([10, 1, 2]))))
    s["mx_ecs_and_cookie"] = sel(TRUSTED_V6) + query(
        "mx." + Z, MX,
        edns=opt(options=option(10, bytes(range(8))) + ecs(2, 56, 0, bytes.fromhex("20010db8000100"))))
    # DNS cookies: a first query, cookies of ours (valid from their address only), stale,
    # forged, of another server's length, malformed, twice, on the full parser's path.
    client = bytes.fromhex("0123456789abcdef")
    v4, v6 = bytes([10, 1, 2, 3]), bytes.fromhex("20010db8000100000000000000000005")
    s["cookie_client_only"] = sel(OXFORD_V4) + query("oxford." + Z, MX, edns=opt(options=option(10, client)))
    s["cookie_valid_v4"] = sel(OXFORD_V4) + query("oxford." + Z, MX, edns=opt(options=cookie(client, v4)))
    s["cookie_valid_v6_tcp"] = sel(OXFORD_V6, tcp=True) + query(Z, MX, edns=opt(options=cookie(client, v6)))
    s["cookie_valid_mapped"] = sel(MAPPED_OXFORD) + query(Z, MX, edns=opt(options=cookie(client, v4)))
    s["cookie_renewed"] = sel(OXFORD_V4) + query(
        "oxford." + Z, MX, edns=opt(options=cookie(client, v4, COOKIE_NOW - 2000)))
    s["cookie_stale"] = sel(OXFORD_V4) + query(
        "oxford." + Z, MX, edns=opt(options=cookie(client, v4, COOKIE_NOW - 4000)))
    s["cookie_elsewhere"] = sel(LONDON_V4) + query("oxford." + Z, MX, edns=opt(options=cookie(client, v4)))
    s["cookie_forged"] = sel(OXFORD_V4) + query(
        "oxford." + Z, MX, edns=opt(options=option(10, client + bytes([1, 0, 0, 0]) + bytes(12))))
    s["cookie_other_server"] = sel(OXFORD_V4) + query(
        "oxford." + Z, MX, edns=opt(options=option(10, client + bytes(range(20)))))
    s["cookie_short"] = sel(OXFORD_V4) + query("oxford." + Z, MX, edns=opt(options=option(10, client[:7])))
    s["cookie_long"] = sel(OXFORD_V4) + query("oxford." + Z, MX, edns=opt(options=option(10, bytes(41))))
    s["cookie_twice"] = sel(OXFORD_V4) + query(
        "oxford." + Z, MX, edns=opt(options=option(10, client) + option(10, client)))
    s["cookie_full_parser"] = sel(OXFORD_V4) + header(ns=1, ar=1) + question("oxford." + Z, MX) + \
        b"\xc0\x0c" + struct.pack(">HHIH", A, IN, 60, 4) + bytes([1, 2, 3, 4]) + \
        opt(options=cookie(client, v4))
    s["cookie_badvers"] = sel(OXFORD_V4) + query(
        "oxford." + Z, MX, edns=opt(version=1, options=option(10, client)))
    # Malformed client subnets (RFC 7871 section 6): FORMERR on every path.
    s["ecs_bits_past_prefix"] = sel(TRUSTED_V4) + query(Z, MX, edns=opt(options=ecs(1, 23, 0, bytes([10, 1, 3]))))
    s["ecs_octet_over"] = sel(TRUSTED_V4) + query(Z, MX, edns=opt(options=ecs(1, 16, 0, bytes([10, 1, 0]))))
    s["ecs_twice"] = sel(TRUSTED_V4) + query(
        Z, MX, edns=opt(options=ecs(1, 16, 0, bytes([10, 1])) + ecs(1, 16, 0, bytes([10, 1]))))
    s["ecs_option_cut"] = sel(TRUSTED_V4) + query(Z, MX, edns=opt(options=ecs(1, 24, 0, bytes([10, 1, 2]))[:-2]))
    # Hosts and static records.
    s["a_host"] = sel(LONDON_V4) + query("mail1.london." + Z, A)
    s["aaaa_host_mixed"] = sel(LOOP_V6) + query("MAIL2.oxford." + Z, AAAA, edns=opt(do=True))
    s["a_host_without_addresses"] = sel(LOOP_V4) + query("isp1.london." + Z, A)
    s["ns_apex"] = sel(NOSITE_V4) + query(Z, NS)
    s["soa_apex"] = sel(NOSITE_V4) + query("SMARTHOST.internal", SOA, edns=opt())
    s["txt_apex"] = sel(LOOP_V4) + query(Z, TXT)
    s["any_apex_tcp"] = sel(LOOP_V4, tcp=True) + query(Z, ANY)
    s["caa_apex"] = sel(LOOP_V4) + query(Z, CAA)
    s["axfr_tcp"] = sel(LOOP_V4, tcp=True) + query(Z, AXFR, rd=False)
    s["ixfr"] = sel(LOOP_V4) + query(Z, IXFR)
    s["mx_static_in_zone"] = sel(NOSITE_V4) + query("mailer." + Z, MX)
    s["cname"] = sel(NOSITE_V4) + query("Alias." + Z, A)
    s["srv"] = sel(NOSITE_V4) + query("_smtp._tcp." + Z, SRV)
    s["ptr"] = sel(NOSITE_V4) + query("1.2.0.192.in-addr." + Z, PTR)
    s["txt_big_plain_udp"] = sel(NOSITE_V4) + query("bigtxt." + Z, TXT)
    s["txt_big_edns"] = sel(NOSITE_V4) + query("bigtxt." + Z, TXT, edns=opt(1232))
    s["nxdomain"] = sel(NOSITE_V4) + query("nosuch." + Z, A, edns=opt())
    s["empty_non_terminal"] = sel(NOSITE_V4) + query("a.b." + Z, TXT)
    s["out_of_zone"] = sel(NOSITE_V4) + query("example.com", A)
    s["root"] = sel(NOSITE_V4) + query("", NS)
    # EDNS variants.
    s["edns_version1"] = sel(NOSITE_V4) + query("oxford." + Z, MX, edns=opt(version=1))
    s["edns_payload_small"] = sel(NOSITE_V4) + query("big." + Z, MX, edns=opt(100))
    s["edns_ext_rcode_set"] = sel(NOSITE_V4) + query("oxford." + Z, MX, edns=opt(ext_rcode=1, do=True))
    s["two_opt_records"] = sel(NOSITE_V4) + query("oxford." + Z, MX, edns=opt() + opt(), ar=2)
    # Classes and types the answer path refuses.
    s["chaos_version_bind"] = sel(LOOP_V4) + query("version.bind", TXT, CH)
    s["class_any"] = sel(LOOP_V4) + query("oxford." + Z, MX, CLASS_ANY)
    s["qtype_opt"] = sel(LOOP_V4) + query("oxford." + Z, OPT)
    # Opcodes other than QUERY.
    s["opcode_notify"] = sel(LOOP_V4) + query(Z, SOA, opcode=4, rd=False)
    s["opcode_update"] = sel(LOOP_V4) + header(opcode=5, qd=1) + question(Z, SOA)
    s["opcode_status"] = sel(LOOP_V4) + header(opcode=2, qd=0)
    s["opcode_iquery"] = sel(LOOP_V4) + query(Z, A, opcode=1)
    # Odd shapes.
    s["qdcount0"] = sel(NOSITE_V4) + header(qd=0)
    s["qdcount0_edns"] = sel(NOSITE_V4) + header(qd=0, ar=1) + opt()
    s["qdcount2_compressed"] = sel(NOSITE_V4) + header(qd=2) + question("oxford." + Z, MX) + \
        question(b"\x05mail1\xc0\x0c", A)
    s["compressed_qname"] = sel(NOSITE_V4) + header(qd=2) + question(Z, SOA) + \
        question(b"\x06london\xc0\x0c", MX)
    s["pointer_loop"] = sel(NOSITE_V4) + header() + question(b"\xc0\x0c", A)
    s["trailing_bytes"] = sel(NOSITE_V4) + query("oxford." + Z, MX) + b"\x00\x00"
    s["answer_in_query"] = sel(NOSITE_V4) + header(an=1) + question(Z, A) + \
        name(Z) + struct.pack(">HHIH", A, IN, 60, 4) + bytes([1, 2, 3, 4])
    s["longest_name"] = sel(NOSITE_V4) + query(
        ".".join(["a" * 63] * 3 + ["b" * 61]), A)  # 4 labels: 64*3 + 62 + 1 = 255
    s["long_label_64"] = sel(NOSITE_V4) + header() + bytes([64]) + b"x" * 64 + b"\x00" + \
        struct.pack(">HH", A, IN)
    s["binary_label"] = sel(NOSITE_V4) + header() + b"\x03a.\xff" + name(Z) + struct.pack(">HH", MX, IN)
    # Truncated packets, a runt, a response.
    full = query("oxford." + Z, MX, edns=opt(options=ecs(1, 24, 0, bytes([10, 1, 2]))))
    s["cut_header"] = sel(NOSITE_V4) + header()
    s["cut_in_name"] = sel(NOSITE_V4) + full[:20]
    s["cut_in_type"] = sel(NOSITE_V4) + full[:12 + len(name("oxford." + Z)) + 2]
    s["cut_in_opt"] = sel(NOSITE_V4) + full[:-5]
    s["runt"] = sel(NOSITE_V4) + header()[:11]
    s["response"] = sel(NOSITE_V4) + header(qr=True) + question("oxford." + Z, MX)
    return s


def smtp_seeds():
    s = {}

    def put(label, seed, text):
        s[label] = struct.pack(">H", seed) + text

    put("greeting", 1, b"220 relay.example.org ESMTP Postfix\r\n")
    put("greeting_multiline", 2, b"220-relay.example.org ESMTP\r\n220-no UCE\r\n220 ready\r\n")
    put("ehlo", 3, b"250-relay.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
        b"250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
    put("greeting_then_ehlo", 4, b"220 hi\r\n250-relay\r\n250 STARTTLS\r\n221 2.0.0 Bye\r\n")
    put("service_unavailable", 5, b"421 4.3.2 Service not available, closing channel\r\n")
    put("reject", 6, b"554 5.7.1 <unknown[192.0.2.1]>: Client host rejected\r\n")
    put("bare_lf_bare_code", 7, b"220\n250-a\n250\n")
    put("mixed_codes", 8, b"250-first\r\n251 second\r\n")
    put("http", 9, b"HTTP/1.1 400 Bad Request\r\nServer: x\r\n\r\n")
    put("code_999", 10, b"999 nope\r\n")
    put("no_separator", 11, b"220x\r\n")
    put("short_code", 12, b"22 x\r\n")
    put("long_line", 13, b"220 " + b"x" * 600 + b"\r\n")
    put("line_511_bytes", 14, b"250 " + b"y" * 505 + b"\r\n")
    put("no_newline", 15, b"220 " + b"z" * 700)
    put("invalid_utf8", 16, b"250-\xff\xfe\xfd\r\n250 \xc3\x28 ok\r\n")
    put("too_many_lines", 17, b"250-x\r\n" * 101 + b"250 x\r\n")
    put("hundred_lines", 18, b"250-x\r\n" * 99 + b"250 x\r\n")
    put("nul_and_cr", 19, b"220 a\x00b\rc\r\r\n")
    put("empty", 20, b"")
    put("tab_after_code", 21, b"250\tok\r\n")
    put("starttls_reply", 22, b"220 2.0.0 Ready to start TLS\r\n")
    put("unicode_text", 23, "250 héllo ☃\r\n".encode())
    return s


def rust_raw_string(source, const):
    m = re.search(r"pub const %s: &str = r#\"(.*?)\"#;" % const, source, re.S)
    return m.group(1)


def config_seeds():
    s = {}
    read = lambda *p: open(os.path.join(ROOT, *p)).read()
    shipped_toml, shipped_zone = read("zones", "smarthost.toml"), read("zones", "smarthost.internal.zone")
    deploy_toml, deploy_zone = read("deploy", "smarthost.toml"), read("deploy", "smarthost.internal.zone")
    lib = read("fuzz", "src", "lib.rs")
    fuzz_toml, fuzz_zone = rust_raw_string(lib, "CONFIG"), rust_raw_string(lib, "ZONE")

    def put(label, toml, zone=None):
        s[label] = toml.encode() + (b"" if zone is None else b"\x00" + zone.encode())

    put("shipped", shipped_toml, shipped_zone)
    put("shipped_toml_only", shipped_toml)
    put("deploy", deploy_toml, deploy_zone)
    put("fuzz_fixture", fuzz_toml, fuzz_zone)
    small = ('[zone]\norigin = "smarthost.internal"\nfile = "z.zone"\n'
             '[sites.a]\nhosts = [{ name = "m1", addresses = ["10.0.0.1", "2001:db8::1"] }]\n'
             '[sites.b]\nhosts = [{ name = "m1", addresses = ["10.0.0.2"] }]\n')
    zone = ('$ORIGIN smarthost.internal.\n$TTL 30\n@ IN SOA ns1 hostmaster ( 1 3600 600 86400 30 )\n'
            '@ IN NS ns1\nns1 IN A 127.0.0.1\n')
    put("small", small, zone)
    put("views", small + '[views]\nnames = ["mx"]\ndefault = "a"\n'
        '[server]\ntrusted_resolvers = ["192.0.2.53/32"]\n', zone)
    put("views_clients", small.replace('[sites.b]', 'clients = ["10.1.0.0/16"]\n[sites.b]'), zone)
    put("fallback_ordered_warm", small.replace(
        '[sites.b]', 'fallback = ["b"]\nwarm_share = 0.5\n[sites.b]'), zone)
    put("fqdn_host", small.replace('addresses = ["10.0.0.2"]', 'fqdn = "relay.example.org"'), zone)
    put("other_origin", small.replace('origin = "smarthost.internal"', 'origin = "Example.COM."'),
        zone.replace("smarthost.internal.", "example.com."))
    # Errors with positions.
    put("err_syntax", small.replace('[sites.b]', '[sites.b\n'), zone)
    put("err_unknown_key", small + 'colour = "blue"\n', zone)
    put("err_unknown_fallback", small.replace('[sites.b]', 'fallback = ["c"]\n[sites.b]'), zone)
    put("err_duplicate_host", small.replace(
        '"2001:db8::1"] }]', '"2001:db8::1"] }, { name = "M1", addresses = ["10.9.9.9"] }]'), zone)
    put("err_warm_without_fallback", small.replace('[sites.b]', 'warm_share = 0.3\n[sites.b]')
        .replace('[sites.b]\nhosts = [{ name = "m1", addresses = ["10.0.0.2"] }]\n', ''), zone)
    put("err_fallback_range", small.replace(
        'file = "z.zone"', 'file = "z.zone"\nfallback_preference = 65535\nfallback_step = 65535')
        .replace('[sites.b]', 'fallback = ["b"]\n[sites.b]'), zone)
    put("err_overlap", small.replace('[sites.b]', 'clients = ["10.1.0.0/16"]\n[sites.b]') +
        'clients = ["10.1.2.0/16"]\n', zone)
    put("err_zone_syntax", small, zone + "bad IN A not-an-address\n")
    put("err_zone_foreign_origin", small, zone.replace("$ORIGIN smarthost.internal.", "$ORIGIN example.com."))
    put("err_zone_no_soa", small, zone.replace("@ IN SOA ns1 hostmaster ( 1 3600 600 86400 30 )\n", ""))
    put("err_zone_apex_mx_with_views", small + '[views]\nnames = ["mx"]\n', zone + "@ IN MX 10 ns1\n")
    put("err_zone_static_at_site", small, zone + "a IN TXT \"taken\"\n")
    put("err_zone_wildcard_delegation", small, zone + "* IN A 10.0.0.9\nsub IN NS ns1\n")
    put("err_zone_cname_and_other", small, zone + "x IN CNAME ns1\nx IN TXT \"no\"\n")
    put("err_zone_unclosed_paren", small, zone + "y IN TXT ( \"open\"\n")
    put("err_empty", "")
    return s


def peer_seeds():
    """What a cluster peer sends: a drains table (every kind of line), a view, a stamp."""
    view = ('{"instance":"127.0.0.1:8053","fingerprint":"' + "a" * 64 + '","drains":"' + "b" * 64 +
            '","reload":"5.0@127.0.0.1:8053","ready":true,"relays":[{"site":"oxford","host":"mail1",'
            '"verdict":"down","reason":"connection refused"}],"sites":[{"site":"oxford",'
            '"mode":"remote_only","answer":["20 mail1.cambridge.smarthost.internal."]}]}')
    return {
        "drains": (b"# drains\noxford/mail1 stamp=1718000000123.0@10.0.0.53:8053\n"
                   b"cambridge/mail2 until=2030-01-01T00:00:00Z stamp=1718000000124.1@[::1]:8053\n"
                   b"london/mail1 undrained stamp=5.0@a\n"
                   b"oxford/mail1 undrained stamp=1718000000123.0@10.0.0.53:8053\n"),
        "view": view.encode(),
        "stamp": b"1718000000123.4@[2001:db8::53]:8053",
    }


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for label, data in sorted(seeds.items()):
        with open(os.path.join(d, label), "wb") as f:
            f.write(data)
    print(f"{target}: {len(seeds)} seeds")


if __name__ == "__main__":
    write("request", request_seeds())
    write("smtp_reply", smtp_seeds())
    write("config", config_seeds())
    write("peer", peer_seeds())
