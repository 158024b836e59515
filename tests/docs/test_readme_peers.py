"""The README's peers table is what benchmarks/peers.json renders, so a new peer search cannot leave it stale."""

from common import peers


def test_readme_peers_table_is_rendered_from_peers_json():
    text = peers.README_FILE.read_text()
    assert peers.render_readme(text, peers.load()) == text, (
        "README.md's peers table differs from benchmarks/peers.json: rewrite it with `python -m common.peers`"
    )
