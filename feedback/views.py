from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render


def home(request):
    if request.user.is_authenticated:
        return redirect("rank")
    return render(request, "feedback/home.html")


@login_required
def rank(request):
    raise NotImplementedError("ranking page: being built")
