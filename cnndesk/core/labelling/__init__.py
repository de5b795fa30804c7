"""Label a folder: from an unsorted pile of images to a class-folder dataset, with the CNN
doing most of the sorting (issue 22). Qt-free and torch-free.

* :mod:`.session` — :class:`LabelSession`, the object the CLI and the Label workspace drive;
* :mod:`.actions` — its undoable actions and the records it hands out;
* :mod:`.folder` — the folder's images, the labels file (CSV ``path,label``), class names;
* :mod:`.picking` — which images to ask about (TypiClust, then uncertainty with diversity), groups;
* :mod:`.suggest` — suggested labels with honest confidence (quick trainer + trust);
* :mod:`.writing` — class folders by copy/move/link through the undo journal, or the labels file;
* :mod:`.training` — a model straight from the labels ("Train now", ``cnndesk label --train``);
* :mod:`.space_cache` — a folder's labelling space on disk (big folders open without their embeddings);
* :mod:`.kept` — the app's answers kept between runs (one labels file per folder in the data folder).
"""

from cnndesk.core.labelling.actions import Action, Question, Suggestion, SuggestionReport
from cnndesk.core.labelling.folder import NONE_LABEL, LabelError, check_label, read_labels
from cnndesk.core.labelling.session import NONE, SKIPPED, Group, LabelSession, default_embedder
from cnndesk.core.labelling.suggest import FitInput, Suggester, fit_suggester
from cnndesk.core.labelling.writing import MODES, WriteResult

__all__ = [
    "MODES", "NONE", "NONE_LABEL", "SKIPPED", "Action", "FitInput", "Group", "LabelError", "LabelSession",
    "Question", "Suggester", "Suggestion", "SuggestionReport", "WriteResult", "check_label", "default_embedder",
    "fit_suggester", "read_labels",
]
