"""The WeChat push protocol as pure functions: signatures, freshness, XML in, passive XML reply out."""

from __future__ import annotations

import base64
import hashlib
import struct
from datetime import UTC, datetime, timedelta
from xml.etree.ElementTree import fromstring as trusted_fromstring

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from incucare.adapters.wechat.commands import looks_like_bind, normalize_phone, parse_bind
from incucare.adapters.wechat.crypto import CryptoError, MessageCrypto, aes_key, msg_signature
from incucare.adapters.wechat.protocol import (
    MAX_BODY_BYTES,
    MAX_REPLY_BYTES,
    MalformedMessage,
    cdata,
    check_signature,
    is_fresh,
    parse_envelope,
    parse_message,
    sign,
    text_reply,
)

TOKEN = "incucare-token"
NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)

TEXT_XML = """<xml>
  <ToUserName><![CDATA[gh_4f2d9a1c0b7e]]></ToUserName>
  <FromUserName><![CDATA[oQ7Xs5dL2kPq9vR3tY8uW1zA6bC]]></FromUserName>
  <CreateTime>1795744800</CreateTime>
  <MsgType><![CDATA[text]]></MsgType>
  <Content><![CDATA[SN-IVF-001 CO2 浓度一直报警 <请尽快>]]></Content>
  <MsgId>24375839283923456</MsgId>
  <MsgDataId><![CDATA[]]></MsgDataId>
  <Idx><![CDATA[]]></Idx>
</xml>"""

IMAGE_XML = """<xml><ToUserName><![CDATA[gh_4f2d9a1c0b7e]]></ToUserName>
<FromUserName><![CDATA[oQ7Xs5dL2kPq9vR3tY8uW1zA6bC]]></FromUserName><CreateTime>1795744801</CreateTime>
<MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[http://mmbiz.qpic.cn/mmbiz_jpg/abc/0]]></PicUrl>
<MsgId>24375839283923457</MsgId><MediaId><![CDATA[Xk3_media_id_9]]></MediaId></xml>"""

VOICE_XML = """<xml><ToUserName><![CDATA[gh_4f2d9a1c0b7e]]></ToUserName>
<FromUserName><![CDATA[oQ7Xs5dL2kPq9vR3tY8uW1zA6bC]]></FromUserName><CreateTime>1795744802</CreateTime>
<MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[voice_media_1]]></MediaId><Format><![CDATA[amr]]></Format>
<Recognition><![CDATA[培养箱温度报警了]]></Recognition><MsgId>24375839283923458</MsgId></xml>"""

SUBSCRIBE_XML = """<xml><ToUserName><![CDATA[gh_4f2d9a1c0b7e]]></ToUserName>
<FromUserName><![CDATA[oQ7Xs5dL2kPq9vR3tY8uW1zA6bC]]></FromUserName><CreateTime>1795744803</CreateTime>
<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event></xml>"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<xml><ToUserName>gh_x</ToUserName><FromUserName>o_x</FromUserName><CreateTime>1795744800</CreateTime>
<MsgType>text</MsgType><Content>&lol4;</Content><MsgId>1</MsgId></xml>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh_x</ToUserName><FromUserName>o_x</FromUserName><CreateTime>1795744800</CreateTime>
<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>1</MsgId></xml>"""


def test_signature_is_sha1_of_the_sorted_parameters():
    # sorted: "1795744800" < "8ac3f2" < "incucare-token"
    expected = hashlib.sha1(b"17957448008ac3f2incucare-token").hexdigest()
    assert sign(TOKEN, "1795744800", "8ac3f2") == expected == "fbc98e6d3c0e99ad813f683c3c7925302689bc92"
    assert check_signature(TOKEN, expected, "1795744800", "8ac3f2")
    assert check_signature(TOKEN, expected.upper(), "1795744800", "8ac3f2")


@pytest.mark.parametrize(("token", "signature", "timestamp", "nonce"), [
    (TOKEN, "fbc98e6d3c0e99ad813f683c3c7925302689bc93", "1795744800", "8ac3f2"),  # one hex digit off
    (TOKEN, "fbc98e6d3c0e99ad813f683c3c7925302689bc92", "1795744801", "8ac3f2"),  # other timestamp
    (TOKEN, "fbc98e6d3c0e99ad813f683c3c7925302689bc92", "1795744800", "8ac3f3"),  # other nonce
    ("other-token", "fbc98e6d3c0e99ad813f683c3c7925302689bc92", "1795744800", "8ac3f2"),
    (TOKEN, "", "1795744800", "8ac3f2"),
    (TOKEN, "签名", "1795744800", "8ac3f2"),
    ("", sign("", "1", "2"), "1", "2"),  # an empty token never verifies anything
    (TOKEN, sign(TOKEN, "1" * 100, "n"), "1" * 100, "n"),  # absurd lengths are refused outright
])
def test_wrong_signatures_fail(token, signature, timestamp, nonce):
    assert not check_signature(token, signature, timestamp, nonce)


@pytest.mark.parametrize(("offset_s", "fresh"), [
    (0, True), (-299, True), (-300, True), (-301, False), (299, True), (301, False), (-86_400, False),
])
def test_freshness_window(offset_s, fresh):
    stamp = str(int((NOW + timedelta(seconds=offset_s)).timestamp()))
    assert is_fresh(stamp, NOW, 300) is fresh


@pytest.mark.parametrize("stamp", ["", "abc", "-1795744800", "1795744800.5", "9" * 20])
def test_timestamps_that_are_not_unix_seconds_are_stale(stamp):
    assert not is_fresh(stamp, NOW)


def test_parse_text_message():
    msg = parse_message(TEXT_XML.encode())
    assert (msg.to_user, msg.from_user, msg.msg_type) == ("gh_4f2d9a1c0b7e", "oQ7Xs5dL2kPq9vR3tY8uW1zA6bC", "text")
    assert msg.create_time == 1795744800 and msg.created_at == datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
    assert msg.msg_id == msg.dedupe_id == "24375839283923456"
    assert msg.content == "SN-IVF-001 CO2 浓度一直报警 <请尽快>"
    assert msg.intake_text() == msg.content
    assert not msg.is_event


def test_parse_image_records_the_media_and_says_it_was_not_downloaded():
    msg = parse_message(IMAGE_XML)
    assert msg.pic_url == "http://mmbiz.qpic.cn/mmbiz_jpg/abc/0" and msg.media_id == "Xk3_media_id_9"
    text = msg.intake_text()
    assert "Xk3_media_id_9" in text and "http://mmbiz.qpic.cn/mmbiz_jpg/abc/0" in text
    assert "未下载" in text and "not downloaded" in text


def test_parse_voice_uses_the_recognition_text():
    msg = parse_message(VOICE_XML)
    assert msg.recognition == "培养箱温度报警了" and msg.format == "amr"
    assert msg.intake_text().startswith("培养箱温度报警了\n[语音 / voice] MediaId: voice_media_1")


def test_parse_subscribe_event():
    msg = parse_message(SUBSCRIBE_XML)
    assert msg.is_event and msg.event == "subscribe" and msg.msg_id == ""
    assert msg.dedupe_id == "oQ7Xs5dL2kPq9vR3tY8uW1zA6bC:1795744803:subscribe"


def test_unmodelled_types_keep_their_fields():
    xml = ("<xml><ToUserName>gh_x</ToUserName><FromUserName>o_x</FromUserName><CreateTime>1795744800</CreateTime>"
           "<MsgType>location</MsgType><Location_X>30.54</Location_X><Location_Y>114.36</Location_Y>"
           "<Label>武汉市武昌区</Label><MsgId>9</MsgId></xml>")
    msg = parse_message(xml)
    assert msg.intake_text() == "[location] Location_X: 30.54 Location_Y: 114.36 Label: 武汉市武昌区"


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_entity_declarations_are_refused_not_expanded(payload):
    with pytest.raises(MalformedMessage, match="refused XML construct"):
        parse_message(payload)


@pytest.mark.parametrize(("payload", "reason"), [
    ("not xml at all", "not well-formed"),
    ("<xml><ToUserName>a</ToUserName>", "not well-formed"),
    ("<root><ToUserName>a</ToUserName></root>", "root element"),
    ("<xml><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><MsgId>1</MsgId></xml>",
     "required"),
    ("<xml><ToUserName>g</ToUserName><FromUserName>o</FromUserName><CreateTime>soon</CreateTime>"
     "<MsgType>text</MsgType><MsgId>1</MsgId></xml>", "CreateTime"),
    ("<xml><ToUserName>g</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime>"
     "<MsgType>text</MsgType><Content>x</Content></xml>", "MsgId"),
    ("<xml><ToUserName>g</ToUserName><FromUserName>" + "o" * 65 + "</FromUserName><CreateTime>1</CreateTime>"
     "<MsgType>text</MsgType><MsgId>1</MsgId></xml>", "64"),
    ("<xml>" + "x" * MAX_BODY_BYTES + "</xml>", "larger"),
])
def test_malformed_messages(payload, reason):
    with pytest.raises(MalformedMessage, match=reason):
        parse_message(payload)


def test_text_reply_swaps_the_users_and_wraps_content_in_cdata():
    msg = parse_message(TEXT_XML)
    xml = text_reply(msg, "已收到报修,工单号 T2026-000001 <ok> & ]]> done", NOW)
    assert "<Content><![CDATA[已收到报修" in xml
    root = trusted_fromstring(xml)  # our own output
    assert [child.tag for child in root] == ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content"]
    assert root.findtext("ToUserName") == "oQ7Xs5dL2kPq9vR3tY8uW1zA6bC"
    assert root.findtext("FromUserName") == "gh_4f2d9a1c0b7e"
    assert root.findtext("CreateTime") == str(int(NOW.timestamp()))
    assert root.findtext("MsgType") == "text"
    assert root.findtext("Content") == "已收到报修,工单号 T2026-000001 <ok> & ]]> done"


def test_reply_is_cut_to_what_wechat_shows_and_drops_control_characters():
    msg = parse_message(TEXT_XML)
    content = trusted_fromstring(text_reply(msg, "\x00\x07报" * 2000, NOW)).findtext("Content")
    assert content is not None and content.endswith(" …") and "\x00" not in content
    assert len(content.encode()) <= MAX_REPLY_BYTES


def test_cdata_cannot_be_closed_early():
    assert cdata("a]]>b") == "<![CDATA[a]]]]><![CDATA[>b]]>"


@pytest.mark.parametrize(("text", "phone", "serial"), [
    ("绑定 13800138000 SN-IVF-001", "13800138000", "SN-IVF-001"),
    ("绑定：13800138000，sn-ivf-001", "13800138000", "SN-IVF-001"),
    ("綁定 ＋８６１３８００１３８０００ ＳＮ－ＩＶＦ－００１", "13800138000", "SN-IVF-001"),
    ("bind 138-0013-8000 SN-IVF-001.", "13800138000", "SN-IVF-001"),
    ("BIND: +86 13800138000", "13800138000", ""),
    ("bind 138 0013 8000", None, None),  # spaces inside the number: the serial would be ambiguous
    ("bind 13800138000", "13800138000", ""),
    ("绑定", None, None),
    ("绑定 张三", None, None),
])
def test_bind_command(text, phone, serial):
    command = parse_bind(text)
    assert looks_like_bind(text)
    if phone is None:
        assert command is None
    else:
        assert command is not None and (command.phone, command.serial) == (phone, serial)


@pytest.mark.parametrize("text", ["SN-IVF-001 报警", "binding error on the door", "请帮我绑定设备吗", ""])
def test_ordinary_text_is_not_a_bind_command(text):
    assert not looks_like_bind(text)


@pytest.mark.parametrize(("raw", "digits"), [
    ("+86 138-0013-8000", "13800138000"), ("0086 13800138000", "13800138000"), ("027-8765 4321", "02787654321"),
    ("8613800138000", "13800138000"),
])
def test_normalize_phone(raw, digits):
    assert normalize_phone(raw) == digits


# safe mode (AES) --------------------------------------------------------------------------------------------

AES_KEY_43 = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wx2c2769f8efd9abc2"


def _spec_encrypt(xml: bytes, random16: bytes, app_id: bytes = APP_ID.encode(), key43: str = AES_KEY_43) -> str:
    """The documented scheme written out independently of the code under test."""
    key = base64.b64decode(key43 + "=")
    plain = random16 + struct.pack(">I", len(xml)) + xml + app_id
    pad = 32 - len(plain) % 32
    plain += bytes([pad]) * pad
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


def test_decrypts_what_the_documented_scheme_encrypts():
    crypto = MessageCrypto(TOKEN, AES_KEY_43, APP_ID)
    encrypted = _spec_encrypt(TEXT_XML.encode(), b"0123456789abcdef")
    assert crypto.decrypt(encrypted) == TEXT_XML.encode()
    assert parse_message(crypto.decrypt(encrypted)).content.startswith("SN-IVF-001")
    assert crypto.encrypt(TEXT_XML, random16=b"0123456789abcdef") == encrypted


def test_msg_signature_covers_the_ciphertext():
    crypto = MessageCrypto(TOKEN, AES_KEY_43, APP_ID)
    expected = hashlib.sha1("".join(sorted([TOKEN, "1795744800", "77", "CIPHER"])).encode()).hexdigest()
    assert msg_signature(TOKEN, "1795744800", "77", "CIPHER") == expected
    assert crypto.check(expected, "1795744800", "77", "CIPHER")
    assert not crypto.check(expected, "1795744800", "77", "CIPHER2")


@pytest.mark.parametrize(("encrypted", "reason"), [
    (_spec_encrypt(b"<xml/>", b"r" * 16, app_id=b"wx-somebody-else"), "another AppID"),
    (_spec_encrypt(b"<xml/>", b"r" * 16, key43="A" * 43), "padding|AppID|length"),
    ("not base64!", "base64"),
    ("QUJD", "AES blocks"),
])
def test_foreign_or_broken_ciphertexts_are_refused(encrypted, reason):
    with pytest.raises(CryptoError, match=reason):
        MessageCrypto(TOKEN, AES_KEY_43, APP_ID).decrypt(encrypted)


def test_encrypted_reply_round_trips():
    crypto = MessageCrypto(TOKEN, AES_KEY_43, APP_ID)
    reply = text_reply(parse_message(TEXT_XML), "已收到 / received", NOW)
    wrapped = trusted_fromstring(crypto.wrap_reply(reply, "1795744800", "nonce1"))
    encrypted = wrapped.findtext("Encrypt") or ""
    assert wrapped.findtext("MsgSignature") == msg_signature(TOKEN, "1795744800", "nonce1", encrypted)
    assert (wrapped.findtext("TimeStamp"), wrapped.findtext("Nonce")) == ("1795744800", "nonce1")
    assert crypto.decrypt(encrypted).decode() == reply


@pytest.mark.parametrize("key", ["short", "!" * 43, "A" * 42, "A" * 44])
def test_bad_encoding_aes_keys_are_refused(key):
    with pytest.raises(CryptoError):
        aes_key(key)


def test_parse_envelope():
    assert parse_envelope("<xml><ToUserName>gh_x</ToUserName><Encrypt><![CDATA[abc=]]></Encrypt></xml>") == "abc="
    with pytest.raises(MalformedMessage, match="Encrypt"):
        parse_envelope(TEXT_XML)
