"""S3 method blocks: parameters, alone only, their needs, no training mix."""
import pytest
from strategy_helpers import mix_of

from tfaug.errors import TfaugError
from tfaug.synthesis.strategies import Needs, parse


def test_method_blocks_parse_alone_and_declare_their_generator():
    m = parse("m1:m=100,L=3", method_model="cvae")
    assert (m.method, m.method_args, m.method_model) == ("m1", {"m": 100, "L": 3}, "cvae")
    assert m.needs == Needs(generators=("cvae",))
    assert parse("m4").needs == Needs(generators=("gan-bank",), encoder=True)
    for bad, msg in (("m1:q=3", "bad method parameter 'q=3'"), ("m2+classic", "classifier of its own"),
                     ("m1+m2", "gives method twice"), ("m3:m=0", "must be >= 1")):
        with pytest.raises(TfaugError, match=msg):
            parse(bad)
    with pytest.raises(TfaugError, match="builds no training mix"):
        mix_of("disc-bank")
