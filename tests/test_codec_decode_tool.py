"""``kis-desk decode``: run through the function and once as a subprocess."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from kis_desk.protocol.codec import build_data_frame
from kis_desk.tools.decode import EXIT_BAD_INPUT, EXIT_OK, EXIT_UNREADABLE, decode_main, main

from test_codec import ACKS, ENC_FRAME, ENC_IV, ENC_KEY, FRAME_1, FRAME_2, PING, chained_records


def run_decode(text: str | bytes, file: str | None = None, **kw) -> tuple[int, list[dict], list[str]]:
    raw = text.encode() if isinstance(text, str) else text
    stdin = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    code = decode_main(file, stdin, out, err, **kw)
    return code, [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue().splitlines()


def test_trade_frames():
    code, out, err = run_decode(FRAME_1 + "\r\n\n   \n" + FRAME_2 + "\n")
    assert (code, err) == (EXIT_OK, [])
    assert [o["timestamp"] for o in out] == ["2023-03-24T11:26:16+09:00", "2023-06-12T09:33:54+09:00"]
    first = out[0]
    assert {k: first[k] for k in ("tr_id", "stock_code", "price", "volume", "cum_volume", "change",
                                  "change_rate")} == {
        "tr_id": "H0STCNT0", "stock_code": "005930", "price": 62700, "volume": 125,
        "cum_volume": 9694968, "change": 400, "change_rate": 0.64}


def test_multi_record_frame_prints_one_line_per_record():
    rows = chained_records(4)
    code, out, err = run_decode(build_data_frame("H0STCNT0", rows) + "\n")
    assert code == EXIT_OK and [o["cum_volume"] for o in out] == [int(r[13]) for r in rows]


def test_generic_tr_prints_fields():
    code, out, _ = run_decode(build_data_frame("H0STASP0", [[str(i) for i in range(62)]]))
    assert code == EXIT_OK and out == [{"tr_id": "H0STASP0", "fields": [str(i) for i in range(62)]}]


def test_control_and_pingpong_lines():
    text = "\n".join([ACKS[0][0], PING,
                      '{"header":{"tr_id":"(null)","tr_key":"","encrypt":"N"},"body":{"rt_cd":"9","msg_cd":"OPSP8996","msg1":"ALREADY IN USE appkey"}}'])
    code, out, err = run_decode(text)
    assert (code, err) == (EXIT_OK, [])
    assert out[0] == {"type": "control", "kind": "subscribed", "ok": True, "tr_id": "H0STCNT0",
                      "tr_key": "005930", "rt_cd": "0", "msg_cd": "OPSP0000", "msg1": "SUBSCRIBE SUCCESS",
                      "encrypt": False, "has_key": True}
    assert out[1] == {"type": "pingpong", "datetime": "20241011121818"}
    assert out[2]["kind"] == "appkey_in_use" and out[2]["tr_id"] == "(null)" and not out[2]["ok"]
    assert "tvldhmfplvgcovaqrspclzhdotfzzequ" not in json.dumps(out)  # key material is not printed


def test_encrypted_frame_uses_ack_key_from_the_input():
    ack = ('{"header":{"tr_id":"H0STCNI0","tr_key":"testuser","encrypt":"Y"},"body":{"rt_cd":"0",'
           f'"msg_cd":"OPSP0000","msg1":"SUBSCRIBE SUCCESS","output":{{"iv":"{ENC_IV}","key":"{ENC_KEY}"}}}}}}')
    code, out, err = run_decode(ENC_FRAME + "\n" + ack + "\n" + ENC_FRAME + "\n")
    assert code == EXIT_BAD_INPUT
    assert len(err) == 1 and err[0].startswith("line 1:") and "no key" in err[0]
    assert out[0]["encrypt"] is True
    assert out[1]["tr_id"] == "H0STCNI0" and out[1]["fields"][24] == "삼성전자"


def test_key_option():
    code, out, _ = run_decode(ENC_FRAME, keys={"H0STCNI0": (ENC_KEY, ENC_IV)})
    assert code == EXIT_OK and out[0]["fields"][8] == "005930"


def test_bad_lines_are_reported_and_processing_continues():
    rows = chained_records(3)
    rows[1][2] = "x"
    text = "\n".join(["garbage", FRAME_1, "0|H0STCNT0|003|1^2", build_data_frame("H0STCNT0", rows), "{"])
    code, out, err = run_decode(text)
    assert code == EXIT_BAD_INPUT
    assert len(out) == 1 + 2
    assert [e.split(":")[0] for e in err] == ["line 1", "line 3", "line 4", "line 5"]
    assert "record 2/3" in err[2] and "price" in err[2]
    assert all("\n" not in e for e in err)


def test_invalid_utf8_is_decoded_leniently():
    code, out, err = run_decode(FRAME_1.encode() + b"\xff\xfe\n" + b"\xff\n" + FRAME_2.encode())
    assert code == EXIT_BAD_INPUT          # the junk line fails
    # the bad bytes land in VI_STND_PRC (not validated): the trade itself is kept
    assert [o["price"] for o in out] == [62700, 71900]
    assert [e.split(":")[0] for e in err] == ["line 2"]


def test_file_argument_and_unreadable_file(tmp_path):
    p = tmp_path / "frames.txt"
    p.write_text(FRAME_1 + "\n" + FRAME_2, encoding="utf-8")
    code, out, _ = run_decode("", file=str(p))
    assert code == EXIT_OK and len(out) == 2
    code, out, err = run_decode("", file=str(tmp_path / "missing.txt"))
    assert code == EXIT_UNREADABLE and out == [] and len(err) == 1 and "missing.txt" in err[0]
    code, out, err = run_decode("", file=str(tmp_path))  # a directory
    assert code == EXIT_UNREADABLE and len(err) == 1


def test_korean_output_is_not_escaped(tmp_path):
    out = io.StringIO()
    stdin = io.TextIOWrapper(io.BytesIO(ENC_FRAME.encode()), encoding="utf-8")
    decode_main(None, stdin, out, io.StringIO(), keys={"H0STCNI0": (ENC_KEY, ENC_IV)})
    assert "삼성전자" in out.getvalue()


def test_main_parses_arguments(tmp_path, capsys):
    p = tmp_path / "f.txt"
    p.write_text(ENC_FRAME + "\n", encoding="utf-8")
    assert main([str(p), "--key", f"H0STCNI0:{ENC_KEY}:{ENC_IV}"]) == EXIT_OK
    assert "삼성전자" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([str(p), "--key", "nonsense"])


def test_subprocess(tmp_path):
    p = tmp_path / "frames.txt"
    p.write_bytes((FRAME_1 + "\r\n" + "bad line\r\n" + PING + "\r\n").encode())
    proc = subprocess.run([sys.executable, "-m", "kis_desk.tools.decode", str(p)],
                          capture_output=True, timeout=60, env={"PYTHONIOENCODING": "ascii", "PATH": ""})
    assert proc.returncode == EXIT_BAD_INPUT, proc.stderr
    lines = proc.stdout.decode("utf-8").splitlines()
    assert json.loads(lines[0])["price"] == 62700
    assert json.loads(lines[1]) == {"type": "pingpong", "datetime": "20241011121818"}
    assert proc.stderr.decode().strip().startswith("line 2: ")
    # stdin, piped
    proc = subprocess.run([sys.executable, "-m", "kis_desk.tools.decode"], input=FRAME_2.encode(),
                          capture_output=True, timeout=60)
    assert proc.returncode == EXIT_OK and json.loads(proc.stdout)["price"] == 71900
    proc = subprocess.run([sys.executable, "-m", "kis_desk.tools.decode", str(tmp_path / "nope")],
                          capture_output=True, timeout=60)
    assert proc.returncode == EXIT_UNREADABLE and proc.stdout == b""
    assert len(proc.stderr.decode().strip().splitlines()) == 1
