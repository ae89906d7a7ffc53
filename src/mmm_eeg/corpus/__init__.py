"""The feature corpus: its on-disk format, writer, reader, merging and building from files."""

from mmm_eeg.corpus.build import build_corpus
from mmm_eeg.corpus.format import CorpusFormatError
from mmm_eeg.corpus.merge import merge_corpora
from mmm_eeg.corpus.reader import Corpus
from mmm_eeg.corpus.writer import CorpusWriter

__all__ = ["Corpus", "CorpusFormatError", "CorpusWriter", "build_corpus", "merge_corpora"]
