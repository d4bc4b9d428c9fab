"""One InputError for both trained-model tools: the list-returning calls stop at the first bad input and
raise its message, which names the input."""

import pytest

from models.captioning.image_captioner import Caption
from models.captioning.image_captioner import InputError as CaptionInputError
from models.input_errors import InputError, texts_or_raise
from models.speech.speech_recognizer import InputError as SpeechInputError
from models.speech.speech_recognizer import Transcript


def test_both_tools_raise_the_same_error_class_a_caller_can_catch_once():
    assert SpeechInputError is CaptionInputError is InputError
    assert issubclass(InputError, ValueError)  # callers that caught ValueError still do


def test_texts_come_back_in_order_when_every_input_worked():
    results = [Transcript("a.wav", "hello"), Transcript("b.wav", "")]
    assert texts_or_raise(results) == ["hello", ""]


def test_the_first_failed_input_is_raised_with_its_message_and_later_ones_are_not_read():
    read = []

    def captions():
        for result in (
            Caption("a.jpg", "a dog"),
            Caption("b.jpg", None, "b.jpg: image file not found"),
            Caption("c.jpg", None, "c.jpg: cannot be read"),
        ):
            read.append(result.name)
            yield result

    with pytest.raises(InputError, match=r"^b\.jpg: image file not found$"):
        texts_or_raise(captions())
    assert read == ["a.jpg", "b.jpg"]
